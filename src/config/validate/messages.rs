//! The config messages a person meets most, on literal expected texts:
//! wrapped secrets, misspelled keys, follow-on errors, YAML syntax.

use std::collections::HashMap;
use std::path::Path;

use crate::config::Config;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every error and warning of `yaml`, as `validate` prints them.
fn messages(yaml: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match Config::from_yaml(yaml, Path::new("config.yaml"), &env(vars)) {
        Ok(c) => c.warnings.iter().map(|d| format!("warning: {d}")).collect(),
        Err(e) => e.errors.iter().map(|d| d.to_string()).collect(),
    }
}

/// (what, YAML, environment, every message `validate` prints for it).
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

const CASES: &[Case] = &[
    (
        "a `Bearer ` prefix",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n",
        &[("EL_KEY", "Bearer sk_0123456789abcdef")],
        &[
            "elevenlabs[0].api_key_env: the value from environment variable EL_KEY starts with `Bearer `, an HTTP authorization scheme, not part of the secret; credwatch builds the header itself: keep only what follows `Bearer ` (set `EL_KEY` to the value alone)",
        ],
    ),
    (
        "quotes kept by docker --env-file",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n",
        &[("EL_KEY", "\"sk_0123456789abcdef\"")],
        &[
            "elevenlabs[0].api_key_env: the value from environment variable EL_KEY is wrapped in quotes, which would be sent as part of the secret (upstream answers 401): `docker --env-file`, Compose `env_file:` and `kubectl create secret --from-env-file` keep quotes literally; write the line as `NAME=value`, without quotes",
        ],
    ),
    (
        "a dotenv line",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n",
        &[("EL_KEY", "ELEVENLABS_API_KEY=sk_0123456789abcdef")],
        &[
            "elevenlabs[0].api_key_env: the value from environment variable EL_KEY is a whole `ELEVENLABS_API_KEY=…` line (from a .env file?), not the value: keep only what follows `=`, without quotes (set `EL_KEY` to the value alone)",
        ],
    ),
    (
        "a BOM",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n",
        &[("EL_KEY", "\u{FEFF}sk_0123456789abcdef")],
        &[
            "elevenlabs[0].api_key_env: the value from environment variable EL_KEY starts with a byte-order mark (U+FEFF, invisible, added by some Windows editors), which would be sent as part of the secret: save it as UTF-8 without a BOM",
        ],
    ),
    (
        "inner quotes in the file",
        "elevenlabs:\n  - name: a\n    api_key: '\"sk_0123456789abcdef\"'\n",
        &[],
        &[
            "elevenlabs[0].api_key: the value from the config file is wrapped in quotes, which would be sent as part of the secret (upstream answers 401): YAML removes one pair of quotes; remove the inner pair",
        ],
    ),
    (
        "a `Basic ` prefix on a Twilio token",
        "twilio:\n  - name: t\n    account_sid: AC0123456789abcdef0123456789abcdef\n    auth_token_env: TW\n",
        &[("TW", "Basic 0123456789abcdef0123456789abcdef")],
        &[
            "twilio[0].auth_token_env: the value from environment variable TW starts with `Basic `, an HTTP authorization scheme, not part of the secret; credwatch builds the header itself: keep only what follows `Basic ` (set `TW` to the value alone)",
        ],
    ),
    (
        "camelCase key",
        "elevenlabs:\n  - name: a\n    apiKeyEnv: EL_KEY\n",
        &[],
        &[
            "elevenlabs[0].apiKeyEnv: unknown key `apiKeyEnv` at line 3 column 5; did you mean `api_key_env`?",
        ],
    ),
    (
        "top-level key in another case",
        "ElevenLabs:\n  - name: a\n    api_key_env: EL_KEY\n",
        &[],
        &["ElevenLabs: unknown key `ElevenLabs` at line 1 column 1; did you mean `elevenlabs`?"],
    ),
    (
        "top-level typo",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\ntwilo: []\n",
        &[],
        &["twilo: unknown key `twilo` at line 4 column 1; did you mean `twilio`?"],
    ),
    (
        "nothing near",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n    colour: blue\n",
        &[],
        &[
            "elevenlabs[0].colour: unknown key `colour` at line 4 column 5; the keys here are `name`, `api_key`, `api_key_env`, `api_key_file`, `base_url`, `allow_insecure_http`, `required_permissions`, `critical`, `labels`, `interval`, `timeout`, `detail_interval`, `phone_numbers`, `twilio`, `expose_numbers`, `twilio_imported_fingerprint`, `max_phone_numbers`, `account` (config.example.yaml has every key)",
        ],
    ),
    (
        "a secret pasted as a key",
        "elevenlabs:\n  - name: a\n    sk_0123456789abcdef0123: true\n",
        &[],
        &[
            "elevenlabs[0]: an unknown key at line 3 column 5 that looks like a secret (not shown); a secret is a value, e.g. `api_key_file: /path/to/file`; the keys here are `name`, `api_key`, `api_key_env`, `api_key_file`, `base_url`, `allow_insecure_http`, `required_permissions`, `critical`, `labels`, `interval`, `timeout`, `detail_interval`, `phone_numbers`, `twilio`, `expose_numbers`, `twilio_imported_fingerprint`, `max_phone_numbers`, `account` (config.example.yaml has every key)",
        ],
    ),
    (
        "a link to a Twilio entry that failed",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n    phone_numbers: true\n    twilio: tw\ntwilio:\n  - name: tw\n    account_sid: bad\n    auth_token_env: TW\n",
        &[
            ("EL_KEY", "sk_0123456789abcdef"),
            ("TW", "0123456789abcdef0123456789abcdef"),
        ],
        &[
            "twilio[0].account_sid: the value from the config file is not an Account SID (`AC` followed by 32 hex digits)",
        ],
    ),
    (
        "a link to an ElevenLabs credential",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n    phone_numbers: true\n    twilio: b\n  - name: b\n    api_key_env: EL_KEY\n",
        &[("EL_KEY", "sk_0123456789abcdef")],
        &[
            "elevenlabs[0].twilio: names the credential at elevenlabs[1], which is not a Twilio credential; name one under `twilio:`",
        ],
    ),
    (
        "a tab",
        "elevenlabs:\n  - name: a\n\tapi_key_env: EL_KEY\n",
        &[],
        &[
            "YAML syntax error at line 3 column 1: a tab in the indentation; YAML indents with spaces only: replace the tab with spaces",
        ],
    ),
    (
        "an unquoted colon",
        "elevenlabs:\n  - name: agent: prod\n    api_key_env: EL_KEY\n",
        &[],
        &[
            "YAML syntax error at line 2 column 16: an unexpected `:`. Either a value contains `: ` (quote the value: `name: \"a: b\"`), or this line is indented deeper than the keys of its mapping (line it up with them)",
        ],
    ),
    (
        "a key out of its list entry",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n  critical: true\n",
        &[],
        &[
            "YAML syntax error at line 4 column 3: the indentation does not match the list that starts at line 2: line up its `- ` entries, and the keys of each entry with each other",
        ],
    ),
    (
        "a key indented too far",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n     critical: true\n",
        &[],
        &[
            "YAML syntax error at line 4 column 14: an unexpected `:`. Either a value contains `: ` (quote the value: `name: \"a: b\"`), or this line is indented deeper than the keys of its mapping (line it up with them)",
        ],
    ),
    (
        "an unclosed quote",
        "elevenlabs:\n  - name: \"a\n    api_key_env: EL_KEY\n",
        &[],
        &[
            "YAML syntax error at line 4 column 1: the file ends inside a quoted value or a bracket opened at line 2: close the quote or bracket",
        ],
    ),
    (
        "routing labels that would clash or cannot be labels",
        "elevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n    labels:\n      team: voice\n      credential: x\n      __meta: y\n      team-name: z\n      env: ''\n      sk_live_0123456789abcdef: x\n      tenant: sk_0123456789abcdef\n",
        &[("EL_KEY", "sk_0123456789abcdef")],
        &[
            "elevenlabs[0].labels.__meta: names starting with `__` are reserved for Prometheus' own use",
            "elevenlabs[0].labels.credential: `credential` is a label credwatch or Prometheus already sets; choose another name (reserved: credential, provider, job, instance, critical, account, reason, check, permission, fingerprint, tier, status, type, currency, phone_number_id, number, problem, version, revision, severity, call_path, elevenlabs, twilio, destination)",
            "elevenlabs[0].labels.env: is empty; in Prometheus an empty label is no label: remove it or give it a value",
            "elevenlabs[0].labels: a label name that looks like a secret (not shown); labels are exported on /metrics: use a name such as `team`",
            "elevenlabs[0].labels.team-name: a label name must match `[a-zA-Z_][a-zA-Z0-9_]*` (Prometheus label names), e.g. `team` or `environment`",
            "elevenlabs[0].labels.tenant: the value looks like a secret (an ElevenLabs key or a Twilio token; not shown); labels are exported on /metrics",
        ],
    ),
];

#[test]
fn each_mistake_is_named_with_its_fix() {
    for (what, yaml, vars, want) in CASES {
        let got = messages(yaml, vars);
        assert_eq!(got, *want, "{what}:\n{yaml}");
        for m in &got {
            assert!(
                !m.contains("0123456789abcdef"),
                "{what}: a secret is echoed: {m}"
            );
        }
    }
}

#[test]
fn prometheus_style_listen_addresses_are_accepted() {
    let yaml = |listen: &str| {
        format!("listen: \"{listen}\"\nelevenlabs:\n  - name: a\n    api_key_env: EL_KEY\n")
    };
    let env = env(&[("EL_KEY", "sk_0123456789abcdef")]);
    for (listen, want) in [
        (":9863", "[::]:9863"),
        ("[::]:9100", "[::]:9100"),
        ("127.0.0.1:0", "127.0.0.1:0"),
    ] {
        let c = Config::from_yaml(&yaml(listen), Path::new("config.yaml"), &env).expect(listen);
        assert_eq!(
            c.listen.map(|a| a.to_string()).as_deref(),
            Some(want),
            "{listen}"
        );
    }
    let e =
        Config::from_yaml(&yaml("9863"), Path::new("config.yaml"), &env).expect_err("a bare port");
    assert_eq!(
        e.errors[0].to_string(),
        "listen: is not a listen address; use `:9863` (every interface), `0.0.0.0:9863`, `127.0.0.1:9863` or `[::]:9863`"
    );
}
