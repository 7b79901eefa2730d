-- name: insert-session-cost!
-- Record one LLM turn's token usage and its price (chat-and-agent.md §10.2).
INSERT INTO session_costs (id, tenant_id, session_id, turn_id, model, input_tokens, output_tokens, total_tokens,
                           cost_usd, created_at)
VALUES (:id, :tenant_id, :session_id, :turn_id, :model, :input_tokens, :output_tokens, :total_tokens, :cost_usd,
        :created_at);

-- name: get-daily-token-budget^
-- The tenant's daily_token_budget and the tokens it recorded since :since (00:00 UTC today), for §2 step 4;
-- reads session_costs_tenant_id_created_at_idx.
SELECT (SELECT daily_token_budget FROM tenant_settings WHERE tenant_id = :tenant_id) AS budget,
       (SELECT COALESCE(sum(total_tokens), 0)::bigint
        FROM session_costs
        WHERE tenant_id = :tenant_id AND created_at >= :since) AS used;
