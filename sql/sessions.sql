-- Chat sessions (data-model.md, sessions). Sessions are created by POST /chat/sessions and by
-- POST /enquiries/{id}/promote-to-session; both produce identical rows.

-- name: insert-session^
-- A new session of the tenant: actor = the calling user, actor_kind human, title null.
INSERT INTO sessions (id, tenant_id, actor_id, actor_kind, title)
VALUES (:id, :tenant_id, :actor_id, 'human', NULL)
RETURNING id, tenant_id, actor_id, actor_kind::text AS actor_kind, title, last_event_id, created_at, updated_at;
