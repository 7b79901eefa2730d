-- name: insert-tenant$
-- Sign-up: a new tenant named after the (trimmed) agency name.
INSERT INTO tenants (id, display_name)
VALUES (:id, :display_name)
RETURNING id;

-- name: insert-default-tenant-settings$
-- Sign-up: the new tenant's settings row with every default of data-model.md.
INSERT INTO tenant_settings (tenant_id)
VALUES (:tenant_id)
RETURNING tenant_id;
