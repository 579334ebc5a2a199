"""SECRET: each provider key format, private keys, JWTs, URL passwords and assignments."""

from __future__ import annotations

import pytest

from gateway.boundary import DetectionSpec, build_detector

OPENAI = "sk-proj-N5KXSc7Tvo-hBKqFYY-kv5ZJr3J1TWDtkwtDDb_xHKas1VOqT3BlbkFJS2G8NPRVdD53X83RZJzzzzgEOzdmenCkhvMdgaKj"
ANTHROPIC = "sk-ant-api03-dMlHUvTCQCyEZDz-TddJ8HyS5SUkCnD8zRA9a9SkpXz9w3QlY7Zkuvqdt7s8Stqcbnr3yBdGBLEPH1qhT61qtc4xatws8AA"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5xKTJvq3Us1PMoAoGCCqGSM49\n-----END EC PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "rule", "value"),
    [
        (f'OpenAI(api_key="{OPENAI}")', "secret.openai_key", OPENAI),
        (
            "legacy sk-Ig8xNbe3nNyjOq9wMxEhh2FDEEtfjgVvVqE1SkHbn88HxjSI",
            "secret.openai_key",
            "sk-Ig8xNbe3nNyjOq9wMxEhh2FDEEtfjgVvVqE1SkHbn88HxjSI",
        ),
        (f"# was {ANTHROPIC}", "secret.anthropic_key", ANTHROPIC),
        (
            "aws_access_key_id = AKIAH9DU7794G9DPMRCG",
            "secret.aws_access_key",
            "AKIAH9DU7794G9DPMRCG",
        ),
        ("temp ASIA629BE2U66MR26846", "secret.aws_access_key", "ASIA629BE2U66MR26846"),
        (
            "aws_secret_access_key = FHz5r1pY4OjE2jBMptUsGr7CmY/uCu3ZR1zTOlUc",
            "secret.assignment",
            "FHz5r1pY4OjE2jBMptUsGr7CmY/uCu3ZR1zTOlUc",
        ),
        (
            "token ghp_vJDCTbyvHNsG9eh6Yo4gfqrc5XlrWi0B26R0",
            "secret.github_token",
            "ghp_vJDCTbyvHNsG9eh6Yo4gfqrc5XlrWi0B26R0",
        ),
        (
            "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",
            "secret.github_pat",
            "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",
        ),
        (
            "bot xoxb-737167868433-5326502014620-fQ1y3GQsMpSscDlkrCaqx9vJ",
            "secret.slack_token",
            "xoxb-737167868433-5326502014620-fQ1y3GQsMpSscDlkrCaqx9vJ",
        ),
        (
            "https://hooks.slack.com/services/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",
            "secret.slack_webhook",
            "https://hooks.slack.com/services/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",
        ),
        (
            "maps AIzaPFeNBTxaQWk8JzFalHlsZfYcMMDktXP-tKs",
            "secret.google_api_key",
            "AIzaPFeNBTxaQWk8JzFalHlsZfYcMMDktXP-tKs",
        ),
        (
            "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",
            "secret.google_oauth_secret",
            "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",
        ),
        (
            "stripe sk_live_c01T5GOBUSZGi6HWGK10Zb0R",
            "secret.stripe_key",
            "sk_live_c01T5GOBUSZGi6HWGK10Zb0R",
        ),
        (
            "rk_test_LZ5TR9SPofbciOx9gy1CJdOb",
            "secret.stripe_key",
            "rk_test_LZ5TR9SPofbciOx9gy1CJdOb",
        ),
        (
            "whsec_vqPVStNKiaEdFrRgSnRFsTHsDDDXh5Jm",
            "secret.stripe_webhook_secret",
            "whsec_vqPVStNKiaEdFrRgSnRFsTHsDDDXh5Jm",
        ),
        (f"key:\n{PEM}\nthanks", "secret.private_key", PEM),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU",
            "secret.private_key",
            "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU",
        ),
        (
            "flattened: -----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj -----END PRIVATE KEY----- ok",
            "secret.private_key",
            "-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj -----END PRIVATE KEY-----",
        ),
        (
            "cut: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMx\nH2Mo4lg\nand then some prose.",
            "secret.private_key",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMx\nH2Mo4lg",
        ),
        (f"Authorization: Bearer {JWT}", "secret.jwt", JWT),
        (
            "Authorization: Bearer 9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a49",
            "secret.bearer_token",
            "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a49",
        ),
        ("postgresql://app_user:Tr0ub4dor&3@db:5432/orders", "secret.url_password", "Tr0ub4dor&3"),
        ("redis://:p4ssw0rdRedis@cache:6379/0", "secret.url_password", "p4ssw0rdRedis"),
        ("DB_PASSWORD=hunter2-Prod!", "secret.assignment", "hunter2-Prod!"),
        ('MYSQL_ROOT_PASSWORD: "r00t-Passw0rd"', "secret.assignment", "r00t-Passw0rd"),
        ('{"client_secret": "xyzzy-Plugh-42"}', "secret.assignment", "xyzzy-Plugh-42"),
        (
            "apiKey: 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "secret.assignment",
            "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        ),
        ("password => 'Sw0rdf1sh'", "secret.assignment", "Sw0rdf1sh"),
        ("pin password: 123456", "secret.assignment", "123456"),
        (
            '- {name: DB_PASSWORD, value: "Qm9vbS1wYXNzd29yZA"}',
            "secret.named_value",
            "Qm9vbS1wYXNzd29yZA",
        ),
        ('{"name": "STRIPE_SECRET", "value": "abc-123-xyz"}', "secret.named_value", "abc-123-xyz"),
    ],
)
def test_secret(text: str, rule: str, value: str) -> None:
    findings = build_detector(DetectionSpec(frozenset({"SECRET"})), None).find(text)
    assert [(f.rule, text[f.start : f.end]) for f in findings] == [(rule, value)]


@pytest.mark.parametrize(
    "text",
    [
        "OPENAI_API_KEY=${OPENAI_API_KEY}",
        "password: <redacted>",
        'api_key = os.environ["API_KEY"]',
        "secret: true",
        "password_policy: strong",
        "password_min_length: 12",
        "max_tokens: 2048",
        "tokens: 4096",
        "keyboard: us",
        "client_id: web-frontend",
        "git e83c5163316f89bfbde7d9ab23ca2e25604af290",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "task-3f2a9c1 sk-short",
        "https://example.com/path:with-colon@",
        "pk_live_c01T5GOBUSZGi6HWGK10Zb0R",  # a publishable key is meant to be public
    ],
)
def test_not_a_secret(text: str) -> None:
    assert build_detector(DetectionSpec(frozenset({"SECRET"})), None).find(text) == []
