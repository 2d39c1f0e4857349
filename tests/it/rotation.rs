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
use credwatch::simulator::{ElAccount, ElKey, Simulator, TwilioAccount, World};

use crate::harness::{Daemon, sample, tempdir::TempDir};
use crate::support::{ac_sid, cred, el_key, eventually, lines_of, tw_token};

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
    let yaml = format!(
        "secret_poll_interval: 1s\n{}elevenlabs:\n\
         \x20 - name: el-file\n    api_key_file: el-key\n    base_url: {el}\n    required_permissions: []\n\
         \x20 - name: el-kubelet\n    api_key_file: mounted/api-key\n    base_url: {el}\n    required_permissions: []\n\
         twilio:\n\
         \x20 - name: tw-file\n    account_sid: {sid}\n    auth_token_file: tw-token\n    base_url: {tw}\n",
        crate::support::FAST,
        el = sim.elevenlabs_url(),
        tw = sim.twilio_url(),
    );
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

    // 2b. A half-written (empty) file is not a rotation: the last good key stays.
    let warnings_before = crate::harness::logs()
        .matches("secret file changed but cannot be used")
        .count();
    write_secret(&dir.path().join("el-key"), "");
    eventually(
        Duration::from_secs(20),
        "the empty file noticed",
        || async {
            let n = crate::harness::logs()
                .matches("secret file changed but cannot be used")
                .count();
            if n > warnings_before {
                Ok(())
            } else {
                Err("no warning yet".to_string())
            }
        },
    )
    .await;
    let m = d.metrics().await;
    assert!(
        m.contains(&format!("fingerprint=\"{}\"", fp(&key_b))),
        "{}",
        lines_of(&m, "el-file")
    );
    crate::support::assert_verdict(&d, "el-file", "healthy", None, Some(true)).await;
    write_secret(&dir.path().join("el-key"), &key_b);

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
