"""Configuration: every VOYAGENT_* value is validated at start-up and a bad one names its variable."""

import subprocess
import sys

import pytest

from voyagent.config import ConfigError, ensure_generated_secret, load_settings

SECRET = "s" * 32


def test_defaults_need_no_configuration_with_the_embedded_database():
    # The defaults a client meets (body limit, buckets, client IP) are checked where they act:
    # tests/middleware/test_defaults.py. Where the server listens is only seen by starting it, so here.
    settings = load_settings({})
    assert settings.embedded_db
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.auth_secret == ""  # generated later, in the data directory
    assert settings.start_warnings == ()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"VOYAGENT_PORT": "0"}, "VOYAGENT_PORT"),
        ({"VOYAGENT_PORT": "80a"}, "VOYAGENT_PORT"),
        ({"VOYAGENT_WORKERS": "65"}, "VOYAGENT_WORKERS"),
        ({"VOYAGENT_WORKERS": "2"}, "VOYAGENT_WORKERS"),  # needs Redis
        ({"VOYAGENT_DB_URL": "postgresql://h/db"}, "VOYAGENT_AUTH_SECRET"),  # secret required then
        ({"VOYAGENT_DB_URL": "postgresql://h/db", "VOYAGENT_AUTH_SECRET": "short"}, "VOYAGENT_AUTH_SECRET"),
        ({"VOYAGENT_DB_URL": "mysql://h/db", "VOYAGENT_AUTH_SECRET": SECRET}, "VOYAGENT_DB_URL"),
        ({"VOYAGENT_BASE_PATH": "api"}, "VOYAGENT_BASE_PATH"),
        ({"VOYAGENT_BASE_PATH": "/api/"}, "VOYAGENT_BASE_PATH"),
        ({"VOYAGENT_TRUST_FORWARDED_FOR": "maybe"}, "VOYAGENT_TRUST_FORWARDED_FOR"),
        ({"VOYAGENT_LOG_LEVEL": "LOUD"}, "VOYAGENT_LOG_LEVEL"),
        ({"VOYAGENT_AUTH_ACCESS_TTL_SECONDS": "59"}, "VOYAGENT_AUTH_ACCESS_TTL_SECONDS"),
        ({"VOYAGENT_AUTH_ARGON2_MEMORY_COST": "8191"}, "VOYAGENT_AUTH_ARGON2_MEMORY_COST"),
        ({"VOYAGENT_INVITE_TTL_DAYS": "366"}, "VOYAGENT_INVITE_TTL_DAYS"),
        ({"VOYAGENT_SMTP_URL": "http://mail"}, "VOYAGENT_SMTP_URL"),
        ({"VOYAGENT_SMTP_TIMEOUT_SECONDS": "121"}, "VOYAGENT_SMTP_TIMEOUT_SECONDS"),
        ({"VOYAGENT_AUDIT_EXPORT_MAX_ROWS": "0"}, "VOYAGENT_AUDIT_EXPORT_MAX_ROWS"),
        ({"VOYAGENT_SSE_HEARTBEAT_SECONDS": "301"}, "VOYAGENT_SSE_HEARTBEAT_SECONDS"),
        ({"VOYAGENT_REDIS_URL": "memcached://x"}, "VOYAGENT_REDIS_URL"),
        ({"ANTHROPIC_BASE_URL": "ftp://gateway.example"}, "ANTHROPIC_BASE_URL"),
        ({"VOYAGENT_AGENT_MAX_TOKENS": "63"}, "VOYAGENT_AGENT_MAX_TOKENS"),
        ({"VOYAGENT_RATE_LIMIT_USER_PER_MINUTE": "-1"}, "VOYAGENT_RATE_LIMIT_USER_PER_MINUTE"),
        ({"VOYAGENT_RATE_LIMIT_SIGNUP_IP_PER_MINUTE": "-1"}, "VOYAGENT_RATE_LIMIT_SIGNUP_IP_PER_MINUTE"),
        ({"VOYAGENT_RATE_LIMIT_SIGNUP_IP_PER_MINUTE": "ten"}, "VOYAGENT_RATE_LIMIT_SIGNUP_IP_PER_MINUTE"),
        ({"VOYAGENT_TRUSTED_PROXY_HOPS": "11"}, "VOYAGENT_TRUSTED_PROXY_HOPS"),
        ({"VOYAGENT_TRUSTED_PROXY_HOPS": "-1"}, "VOYAGENT_TRUSTED_PROXY_HOPS"),
        ({"VOYAGENT_TRUSTED_PROXY_HOPS": "1.5"}, "VOYAGENT_TRUSTED_PROXY_HOPS"),
        ({"VOYAGENT_TRUSTED_PROXY_HOPS": "true"}, "VOYAGENT_TRUSTED_PROXY_HOPS"),
        # the deprecated alias is still validated, even where the new variable wins
        ({"VOYAGENT_TRUSTED_PROXY_HOPS": "2", "VOYAGENT_TRUST_FORWARDED_FOR": "maybe"}, "VOYAGENT_TRUST_FORWARDED_FOR"),
    ],
)
def test_a_bad_value_names_its_variable(env, variable):
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


def test_asyncpg_scheme_is_accepted_and_public_url_loses_its_trailing_slash():
    settings = load_settings({"VOYAGENT_DB_URL": "postgresql+asyncpg://u@h:5432/db", "VOYAGENT_AUTH_SECRET": SECRET,
                              "VOYAGENT_PUBLIC_URL": "https://app.example.com/"})
    assert settings.db_url == "postgresql://u@h:5432/db"
    assert settings.public_url == "https://app.example.com"
    assert not settings.embedded_db


def test_the_anthropic_base_url_defaults_to_the_provider_and_loses_its_trailing_slash():
    assert load_settings({}).anthropic_base_url == "https://api.anthropic.com"
    settings = load_settings({"ANTHROPIC_BASE_URL": "http://127.0.0.1:8099/gateway/"})
    assert settings.anthropic_base_url == "http://127.0.0.1:8099/gateway"


def test_zero_disables_a_bucket_and_booleans_accept_the_documented_words():
    settings = load_settings({"VOYAGENT_RATE_LIMIT_AUTH_IP_PER_MINUTE": "0", "VOYAGENT_TRUST_FORWARDED_FOR": "On",
                              "VOYAGENT_RATE_LIMIT_SIGNUP_IP_PER_MINUTE": "0"})
    assert settings.rate_limit_auth_ip_per_minute == 0
    assert settings.rate_limit_signup_ip_per_minute == 0
    assert settings.trusted_proxy_hops == 1  # "On" is true


@pytest.mark.parametrize(
    ("env", "hops", "warning"),
    [
        ({"VOYAGENT_TRUSTED_PROXY_HOPS": "0"}, 0, None),
        ({"VOYAGENT_TRUSTED_PROXY_HOPS": "3"}, 3, None),
        ({"VOYAGENT_TRUSTED_PROXY_HOPS": "10"}, 10, None),
        ({"VOYAGENT_TRUSTED_PROXY_HOPS": " "}, 0, None),  # blank is unset
        ({"VOYAGENT_TRUST_FORWARDED_FOR": "true"}, 1, "read as VOYAGENT_TRUSTED_PROXY_HOPS=1"),
        ({"VOYAGENT_TRUST_FORWARDED_FOR": "false"}, 0, "read as VOYAGENT_TRUSTED_PROXY_HOPS=0"),
        ({"VOYAGENT_TRUST_FORWARDED_FOR": "true", "VOYAGENT_TRUSTED_PROXY_HOPS": "2"}, 2, "ignored"),
        ({"VOYAGENT_TRUST_FORWARDED_FOR": "true", "VOYAGENT_TRUSTED_PROXY_HOPS": "0"}, 0, "ignored"),
    ],
)
def test_trusted_proxy_hops_and_its_deprecated_alias(env, hops, warning):
    settings = load_settings(env)
    assert settings.trusted_proxy_hops == hops
    if warning is None:
        assert settings.start_warnings == ()
    else:
        [message] = settings.start_warnings
        assert message.startswith("VOYAGENT_TRUST_FORWARDED_FOR is deprecated") and warning in message


def test_generated_secret_is_created_once_with_mode_0600_and_reused(tmp_path):
    settings = load_settings({"VOYAGENT_DATA_DIR": str(tmp_path / "data")})
    first = ensure_generated_secret(settings)
    second = ensure_generated_secret(settings)
    secret_file = tmp_path / "data" / "auth-secret"
    assert len(first.auth_secret.encode()) >= 32
    assert first.auth_secret == second.auth_secret
    assert secret_file.stat().st_mode & 0o777 == 0o600


def test_cli_exits_non_zero_with_one_line_naming_the_variable():
    result = subprocess.run([sys.executable, "-m", "voyagent", "serve"], capture_output=True, text=True,
                            env={"VOYAGENT_PORT": "99999", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "VOYAGENT_PORT" in lines[0]


def test_cli_names_a_bad_proxy_hop_count_in_one_line():
    result = subprocess.run([sys.executable, "-m", "voyagent", "serve"], capture_output=True, text=True,
                            env={"VOYAGENT_TRUSTED_PROXY_HOPS": "11", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "VOYAGENT_TRUSTED_PROXY_HOPS" in lines[0] and "at most 10" in lines[0]


def test_cli_logs_the_deprecated_alias_at_start():
    # `migrate` against a closed port: the start-up path runs (and logs) without leaving a server behind
    result = subprocess.run([sys.executable, "-m", "voyagent", "migrate"], capture_output=True, text=True, timeout=60,
                            env={"VOYAGENT_TRUST_FORWARDED_FOR": "true", "VOYAGENT_DB_URL": "postgresql://127.0.0.1:1/x",
                                 "VOYAGENT_AUTH_SECRET": SECRET, "PATH": "/usr/bin:/bin"})
    warnings = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1, result.stderr
    assert "VOYAGENT_TRUST_FORWARDED_FOR is deprecated" in warnings[0]
    assert "VOYAGENT_TRUSTED_PROXY_HOPS=1" in warnings[0]


def test_cli_flags_are_validated_like_the_variables():
    result = subprocess.run([sys.executable, "-m", "voyagent", "serve", "--workers", "3"], capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode != 0
    assert "VOYAGENT_WORKERS" in result.stderr
