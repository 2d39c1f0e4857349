//! `labels:` for alert routing: a credential's labels reach
//! `credwatch_credential_info` on `/metrics` (where alerts join them with
//! `group_left`), escaped, and nowhere else; a reload that changes them is
//! applied.

use credwatch_sim::{ElAccount, ElKey, Simulator, World};

use crate::harness::Daemon;
use crate::support::{FAST, config, el, el_key, wait_verdict};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_are_exported_on_credential_info_only() {
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-labels"));
    world
        .elevenlabs
        .add_key(el_key("labelled"), ElKey::new("keyLabelled", "ws-labels"));
    let sim = Simulator::start(world).await.expect("simulator");
    let yaml = config(
        FAST,
        &[
            el(
                "el-labelled",
                &el_key("labelled"),
                &sim.elevenlabs_url(),
                "    labels:\n      team: voice\n      environment: 'prod \"eu\"'\n",
            ),
            el("el-plain", &el_key("labelled"), &sim.elevenlabs_url(), ""),
        ],
        &[],
    );
    let d = Daemon::start(&yaml).await;
    wait_verdict(&d, "el-labelled").await;
    let metrics = d.metrics().await;
    assert!(
        metrics.lines().any(|l| l
            == "credwatch_credential_info{provider=\"elevenlabs\",credential=\"el-labelled\",critical=\"true\",account=\"el-labelled\",environment=\"prod \\\"eu\\\"\",team=\"voice\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l
            == "credwatch_credential_info{provider=\"elevenlabs\",credential=\"el-plain\",critical=\"true\",account=\"el-plain\"} 1"),
        "{metrics}"
    );
    // Only the info series carries them: every other series joins it.
    let elsewhere: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("team=") && !l.starts_with("credwatch_credential_info{"))
        .collect();
    assert!(elsewhere.is_empty(), "{elsewhere:?}");

    // A reload that changes them is applied to the same series set.
    let reloaded = config(
        FAST,
        &[
            el(
                "el-labelled",
                &el_key("labelled"),
                &sim.elevenlabs_url(),
                "    labels:\n      team: payments\n",
            ),
            el("el-plain", &el_key("labelled"), &sim.elevenlabs_url(), ""),
        ],
        &[],
    );
    std::fs::write(d.config_path(), reloaded).expect("write config");
    let (code, body) = d.post_reload().await;
    assert_eq!(code, 200, "{body}");
    let metrics = d.metrics().await;
    let info: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("credwatch_credential_info{") && l.contains("el-labelled"))
        .collect();
    assert_eq!(
        info,
        [
            "credwatch_credential_info{provider=\"elevenlabs\",credential=\"el-labelled\",critical=\"true\",account=\"el-labelled\",team=\"payments\"} 1"
        ],
        "{metrics}"
    );
    d.stop().await;
}
