-- name: ensure-tenant-settings!
-- Create the tenant's settings row with the defaults if it is missing (data-model.md, tenant_settings).
INSERT INTO tenant_settings (tenant_id)
VALUES (:tenant_id)
ON CONFLICT (tenant_id) DO NOTHING;

-- name: get-tenant-settings^
-- The tenant's settings row.
SELECT tenant_id, model, system_prompt_suffix, rate_limit_per_minute, rate_limit_per_hour, daily_token_budget,
       locale, timezone, default_currency
FROM tenant_settings
WHERE tenant_id = :tenant_id;

-- name: update-tenant-settings^
-- Apply a partial update: each column changes only when its set_<column> flag is true. updated_at is taken
-- after the row lock, so it grows in commit order (it versions the API-key cache, services/api_key_auth.py).
UPDATE tenant_settings
SET model = CASE WHEN :set_model::boolean THEN :model::varchar ELSE model END,
    system_prompt_suffix = CASE WHEN :set_system_prompt_suffix::boolean THEN :system_prompt_suffix::text
                                ELSE system_prompt_suffix END,
    rate_limit_per_minute = CASE WHEN :set_rate_limit_per_minute::boolean THEN :rate_limit_per_minute::int
                                 ELSE rate_limit_per_minute END,
    rate_limit_per_hour = CASE WHEN :set_rate_limit_per_hour::boolean THEN :rate_limit_per_hour::int
                               ELSE rate_limit_per_hour END,
    daily_token_budget = CASE WHEN :set_daily_token_budget::boolean THEN :daily_token_budget::int
                              ELSE daily_token_budget END,
    locale = CASE WHEN :set_locale::boolean THEN :locale::varchar ELSE locale END,
    timezone = CASE WHEN :set_timezone::boolean THEN :timezone::varchar ELSE timezone END,
    default_currency = CASE WHEN :set_default_currency::boolean THEN :default_currency::char(3)
                            ELSE default_currency END,
    updated_at = clock_timestamp()
WHERE tenant_id = :tenant_id
RETURNING tenant_id, model, system_prompt_suffix, rate_limit_per_minute, rate_limit_per_hour, daily_token_budget,
          locale, timezone, default_currency, updated_at;
