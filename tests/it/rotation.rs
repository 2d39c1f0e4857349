//! Secret files are re-read while running: a rotated key (Kubernetes symlink
//! swap, write-and-rename, or a plain overwrite) changes the fingerprint,
//! records when it changed, and the verdict follows the new secret without a
//! restart.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use credwatch::secret::Secret;
use credwatch_sim::{ElAccount, ElKey, Simulator, TwilioAccount, World};

use crate::harness::{Daemon, sample, tempdir::TempDir};
use crate::support::{Doc, Item};
use crate::support::{ac_sid, cred, el_key, eventually, lines_of, tw_token};
use serde_json::json;

fn write_secret(path: &Path, value: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("open secret file");
    f.write_all(value.as_bytes()).expect("write secret");
    f.write_all(b"\n").expect("write secret");
}

/// Writes a new file next to `path` and renames it over `path` (atomic).
fn rename_over(path: &Path, value: &str) {
    let tmp = path.with_extension("tmp");
    write_secret(&tmp, value);
    std::fs::rename(&tmp, path).expect("rename");
}

/// The kubelet's layout: `name -> ..data/name`, `..data -> ..<timestamp>`.
fn kubelet_mount(dir: &Path, name: &str, version: &str, value: &str) {
    let data = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&data).expect("mkdir");
    write_secret(&data.join(name), value);
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    let link = dir.join(name);
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink(format!("..data/{name}"), &link).expect("symlink");
    }
}

fn fp(secret: &str) -> String {
    Secret::new(secret).fingerprint()
}

/// Waits until the credential's fingerprint series is exactly `want`.
async fn wait_fingerprint(d: &Daemon, name: &str, want: &str) -> String {
    let me = cred(name);
    eventually(
        Duration::from_secs(20),
        &format!("{name} fingerprint {want}"),
        || async {
            let m = d.metrics().await;
            let ours: Vec<&str> = m
                .lines()
                .filter(|l| {
                    l.starts_with("credwatch_credential_fingerprint_info{") && l.contains(&me)
                })
                .collect();
            if ours.len() == 1 && ours[0].contains(&format!("fingerprint=\"{want}\"")) {
                Ok(m.clone())
            } else {
                Err(format!("{ours:?}"))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secret_files_are_picked_up_without_a_restart() {
    let key_a = el_key("rotation-a");
    let key_b = el_key("rotation-b");
    let key_unknown = el_key("rotation-never-issued");
    let key_k1 = el_key("rotation-kubelet-1");
    let key_k2 = el_key("rotation-kubelet-2");
    let sid = ac_sid("rotation");
    let token_old = tw_token("rotation-old");
    let token_new = tw_token("rotation-new");

    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-rotation"));
    for (i, k) in [&key_a, &key_b, &key_k1, &key_k2].into_iter().enumerate() {
        world
            .elevenlabs
            .add_key(k.clone(), ElKey::new(format!("keyItRot{i}"), "ws-rotation"));
    }
    world
        .twilio
        .add_account(TwilioAccount::new(&sid, &token_old).with_numbers(&["+15005550012"]));
    let sim = Simulator::start(world).await.expect("simulator");

    let dir = Arc::new(TempDir::new());
    write_secret(&dir.path().join("el-key"), &key_a);
    let mount = dir.path().join("mounted");
    std::fs::create_dir_all(&mount).expect("mkdir");
    kubelet_mount(&mount, "api-key", "2026_01_01_00_00_00.1", &key_k1);
    write_secret(&dir.path().join("tw-token"), &token_old);
    let el = sim.elevenlabs_url();
    let yaml = Doc::new()
        .set("secret_poll_interval", "1s")
        .with_lines(crate::support::FAST)
        .push(
            "elevenlabs",
            Item::new(json!({
                "name": "el-file", "api_key_file": "el-key", "base_url": el,
                "required_permissions": [],
            })),
        )
        .push(
            "elevenlabs",
            Item::new(json!({
                "name": "el-kubelet", "api_key_file": "mounted/api-key", "base_url": el,
                "required_permissions": [],
            })),
        )
        .push(
            "twilio",
            Item::new(json!({
                "name": "tw-file", "account_sid": sid, "auth_token_file": "tw-token",
                "base_url": sim.twilio_url(),
            })),
        )
        .render();
    let d = Daemon::start_in(dir.clone(), &yaml).await;
    for name in ["el-file", "el-kubelet", "tw-file"] {
        crate::support::wait_status(&d, name, "healthy").await;
    }
    let m = wait_fingerprint(&d, "el-file", &fp(&key_a)).await;
    for name in ["el-file", "el-kubelet", "tw-file"] {
        assert_eq!(
            sample(
                &m,
                "credwatch_credential_changed_timestamp_seconds",
                &[&cred(name)]
            ),
            None,
            "nothing changed yet:\n{}",
            lines_of(&m, name)
        );
    }

    // 1. Write a new file and rename it over the old one: a key ElevenLabs does not know.
    rename_over(&dir.path().join("el-key"), &key_unknown);
    let m = wait_fingerprint(&d, "el-file", &fp(&key_unknown)).await;
    assert!(
        sample(
            &m,
            "credwatch_credential_changed_timestamp_seconds",
            &[&cred("el-file")]
        )
        .is_some(),
        "{}",
        lines_of(&m, "el-file")
    );
    let c = crate::support::wait_status(&d, "el-file", "unhealthy").await;
    assert_eq!(c["reason"], "invalid_credentials", "{c}");
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.header("xi-api-key") == Some(key_unknown.as_str())),
        "the new key was used"
    );

    // 2. Overwrite the same file in place with a good key.
    let changed_before = sample(
        &m,
        "credwatch_credential_changed_timestamp_seconds",
        &[&cred("el-file")],
    )
    .expect("changed timestamp");
    write_secret(&dir.path().join("el-key"), &key_b);
    let m = wait_fingerprint(&d, "el-file", &fp(&key_b)).await;
    assert!(
        sample(
            &m,
            "credwatch_credential_changed_timestamp_seconds",
            &[&cred("el-file")]
        )
        .is_some_and(|t| t >= changed_before),
        "{}",
        lines_of(&m, "el-file")
    );
    crate::support::wait_status(&d, "el-file", "healthy").await;
    crate::support::assert_verdict(&d, "el-file", "healthy", None, Some(true)).await;

    // 2b. An emptied file is a value credwatch refuses: unhealthy
    // `invalid_config`, saying where and what, until the file is fixed.
    write_secret(&dir.path().join("el-key"), "");
    let c = d
        .wait_for("el-file", Duration::from_secs(20), |c| {
            c["reason"] == "invalid_config"
        })
        .await;
    let error = c["config_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("elevenlabs[0].api_key_file: ")
            && error.contains("is empty")
            && error.contains("el-key"),
        "{c}"
    );
    // Nothing is sent while it is refused, not even the previous key
    // (three intervals pass).
    let sent = |sim: &Simulator| {
        sim.requests()
            .iter()
            .filter(|r| r.header("xi-api-key") == Some(key_b.as_str()))
            .count()
    };
    // (A probe started just before the refusal ends within the 500 ms timeout.)
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = sent(&sim);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sent(&sim), before, "a refused credential is not probed");
    write_secret(&dir.path().join("el-key"), &key_b);
    crate::support::wait_status(&d, "el-file", "healthy").await;
    crate::support::assert_verdict(&d, "el-file", "healthy", None, Some(true)).await;

    // 3. The kubelet's symlink swap.
    kubelet_mount(&mount, "api-key", "2026_02_01_00_00_00.2", &key_k2);
    let m = wait_fingerprint(&d, "el-kubelet", &fp(&key_k2)).await;
    assert!(
        sample(
            &m,
            "credwatch_credential_changed_timestamp_seconds",
            &[&cred("el-kubelet")]
        )
        .is_some()
    );
    eventually(
        Duration::from_secs(20),
        "the swapped key in use",
        || async {
            if sim
                .requests()
                .iter()
                .any(|r| r.header("xi-api-key") == Some(key_k2.as_str()))
            {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        },
    )
    .await;
    crate::support::assert_verdict(&d, "el-kubelet", "healthy", None, Some(true)).await;

    // 4. Twilio: the token is rotated upstream first (invalid), then the file follows.
    sim.update(|w| {
        w.twilio.rotate_token(&sid, token_new.clone());
    });
    let c = crate::support::wait_status(&d, "tw-file", "unhealthy").await;
    assert_eq!(c["reason"], "invalid_credentials", "{c}");
    rename_over(&dir.path().join("tw-token"), &token_new);
    wait_fingerprint(&d, "tw-file", &fp(&token_new)).await;
    crate::support::wait_status(&d, "tw-file", "healthy").await;
    crate::support::assert_verdict(&d, "tw-file", "healthy", None, Some(true)).await;

    // Nothing about the old or new secrets leaks through the change messages.
    let logs = crate::harness::logs();
    for s in [
        &key_a,
        &key_b,
        &key_unknown,
        &key_k1,
        &key_k2,
        &token_old,
        &token_new,
    ] {
        assert!(!logs.contains(s.as_str()), "a secret is in the logs");
    }
    d.stop().await;
}

/// A rotated secret starts from nothing: the old verdict, permissions and
/// quota are never shown next to the new fingerprint. A new key that only
/// gets 5xx leaves the credential pending (saying why), not healthy; a
/// value with a line break inside is refused (`invalid_config`, naming the
/// key path and the file, never the value) and nothing is sent with it; a
/// good key again is healthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_secret_starts_from_nothing_and_a_refused_one_is_invalid_config() {
    let key_good = el_key("fresh-good");
    let key_5xx = el_key("fresh-only-5xx");
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-fresh"));
    world
        .elevenlabs
        .add_key(key_good.clone(), ElKey::new("keyItFresh1", "ws-fresh"));
    let mut broken = ElKey::new("keyItFresh2", "ws-fresh");
    broken.fault = Some(credwatch_sim::Fault::ServerError);
    world.elevenlabs.add_key(key_5xx.clone(), broken);
    let sim = Simulator::start(world).await.expect("simulator");

    let dir = Arc::new(TempDir::new());
    let file = dir.path().join("fresh-key");
    write_secret(&file, &key_good);
    let yaml = Doc::new()
        .set("secret_poll_interval", "1s")
        .with_lines(crate::support::FAST)
        .push(
            "elevenlabs",
            Item::new(json!({
                "name": "el-fresh", "api_key_file": "fresh-key",
                "base_url": sim.elevenlabs_url(),
            })),
        )
        .render();
    let d = Daemon::start_in(dir.clone(), &yaml).await;
    let me = cred("el-fresh");
    crate::support::wait_status(&d, "el-fresh", "healthy").await;
    let m = wait_fingerprint(&d, "el-fresh", &fp(&key_good)).await;
    for family in [
        "credwatch_credential_valid",
        "credwatch_permission_granted",
        "credwatch_elevenlabs_characters_used",
    ] {
        assert!(
            sample(&m, family, &[&me]).is_some(),
            "{family}:\n{}",
            lines_of(&m, "el-fresh")
        );
    }

    // 1. A key that only ever gets 5xx.
    rename_over(&file, &key_5xx);
    let new_fp = fp(&key_5xx);
    // Every scrape that shows the new fingerprint shows no verdict of the old key.
    let m = eventually(
        Duration::from_secs(20),
        "the 5xx key tried and reported unreachable",
        || async {
            let m = d.metrics().await;
            if m.contains(&format!("fingerprint=\"{new_fp}\"")) {
                for family in [
                    "credwatch_credential_valid",
                    "credwatch_permission_granted",
                    "credwatch_elevenlabs_characters_used",
                    "credwatch_elevenlabs_characters_limit",
                    "credwatch_credential_problem_info",
                ] {
                    assert_eq!(
                        sample(&m, family, &[&me]),
                        None,
                        "{family} of the old key next to the new fingerprint:\n{}",
                        lines_of(&m, "el-fresh")
                    );
                }
                assert_eq!(
                    sample(&m, "credwatch_credential_healthy", &[&me]),
                    Some(0.0),
                    "{}",
                    lines_of(&m, "el-fresh")
                );
                if sample(
                    &m,
                    "credwatch_credential_pending_info",
                    &[&me, "why=\"upstream_unreachable\""],
                ) == Some(1.0)
                {
                    return Ok(m);
                }
            }
            Err(lines_of(&m, "el-fresh"))
        },
    )
    .await;
    assert_eq!(
        sample(
            &m,
            "credwatch_credential_pending_info",
            &[&me, "why=\"secret_changed\""]
        ),
        None,
        "one why at a time"
    );
    let c = d.credential("el-fresh").await;
    assert_eq!(c["status"], "pending", "{c}");
    assert_eq!(c["valid"], serde_json::Value::Null, "{c}");
    assert_eq!(c["pending"]["why"], "upstream_unreachable", "{c}");
    assert_eq!(c["pending"]["reason"], "upstream_error", "{c}");
    assert!(c["pending"]["since"].is_string(), "{c}");
    assert!(
        c["pending"]["secret_changed"].is_string(),
        "the change is named too: {c}"
    );
    let (code, body) = d.get("/health?credential=el-fresh").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("upstream_unreachable"), "{body}");
    let (_, page) = d.get("/").await;
    // The status page's card of the credential.
    let card = page
        .split("<article ")
        .find(|c| c.contains("id=\"c-el-fresh\""))
        .and_then(|c| c.split("</article>").next())
        .unwrap_or_default();
    assert!(
        card.contains("badge pending") && !card.contains("healthy"),
        "{card}"
    );

    // 2. A value with a line break inside: refused, nothing sent with it.
    let sent_before = sim.requests().len();
    write_secret(&file, &format!("{key_good}\nsecond-line"));
    let c = d
        .wait_for("el-fresh", Duration::from_secs(20), |c| {
            c["reason"] == "invalid_config"
        })
        .await;
    assert_eq!(c["status"], "unhealthy", "{c}");
    assert_eq!(c["valid"], serde_json::Value::Null, "{c}");
    let error = c["config_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("elevenlabs[0]: the new API key from file "),
        "{c}"
    );
    assert!(
        error.contains("fresh-key") && error.contains("line break"),
        "{c}"
    );
    assert!(
        !error.contains("second-line") && !error.contains(&key_good),
        "{c}"
    );
    let m = d.metrics().await;
    assert_eq!(
        sample(
            &m,
            "credwatch_credential_problem_info",
            &[&me, "reason=\"invalid_config\""]
        ),
        Some(1.0),
        "{}",
        lines_of(&m, "el-fresh")
    );
    assert_eq!(
        sample(&m, "credwatch_credential_pending_info", &[&me]),
        None
    );
    assert_eq!(d.get("/health?credential=el-fresh").await.0, 503);
    // The refused value is nowhere: not in /metrics, /health or /.
    for path in ["/metrics", "/health?verbose=1", "/"] {
        let (_, body) = d.get(path).await;
        assert!(
            !body.contains("second-line") && !body.contains(&key_good),
            "{path}: {body}"
        );
    }
    assert!(
        sim.requests()[sent_before..].iter().all(|r| r
            .header("xi-api-key")
            .is_none_or(|k| !k.contains("second-line"))),
        "the refused value was never sent"
    );

    // 3. The good key again: healthy, with its own fingerprint.
    rename_over(&file, &key_good);
    crate::support::wait_status(&d, "el-fresh", "healthy").await;
    let m = wait_fingerprint(&d, "el-fresh", &fp(&key_good)).await;
    assert_eq!(sample(&m, "credwatch_credential_valid", &[&me]), Some(1.0));

    let logs = crate::harness::logs();
    assert!(
        !logs.contains("second-line"),
        "the refused value is not in the log"
    );
    assert!(!logs.contains(key_5xx.as_str()) && !logs.contains(key_good.as_str()));
    d.stop().await;
}
