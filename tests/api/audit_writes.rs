//! Every answer that needs an audit row has it: a refusal waits for the store like a
//! report does when another process holds its write lock, a refusal whose row cannot be
//! written is not answered as one, and the head file anchors the rows written when the
//! server stops (session 17's attack: repros 01 and 10), with the request checks found
//! alongside (repro 03: a name in `purpose`; repeated query parameters).

use super::*;

/// The audit rows after `after` as (actor, action, outcome), read from the store.
fn rows_after(w: &World, after: i64) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    let mut st = conn
        .prepare("SELECT actor, action, outcome FROM audit WHERE seq > ?1 ORDER BY seq")
        .unwrap();
    st.query_map([after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn last_row(w: &World) -> (i64, String) {
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    conn.query_row(
        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn refused(actor: &str, outcome: &str) -> (String, String, String) {
    (actor.into(), "refused".into(), outcome.into())
}

/// Repro 01: with another process holding the store's write lock (`hedui token add
/// --store hedui.db` beside the server), a refusal was answered at once and its row dropped
/// (`database is locked`), also the row of a request without a usable token. Now a refusal
/// waits for the lock as a report's commit does; a row that truly cannot be written turns
/// the answer into `500 internal`, and the rows of refusals without a token are kept for the
/// next flush. Also repro 03 (a member's name in `purpose`) and repeated query parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_answered_only_with_its_audit_row_also_while_the_store_is_busy() {
    let w = World::new(12);
    let rows = clean_households(&w, 12).into_iter().next().unwrap();
    let (_sim, sim_addr) = w.sim(FAST);
    let cfg = w.serve_config(&sim_addr, "");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (intake_id, intake) = w.token("intake", COUNTY);
    let (auditor_id, auditor) = w.token("auditor", "*");
    // quiet for a second: the next refusal without a token is written at once
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let start = last_row(&w).0;

    // another process holds the write lock for 1.5 s
    let locker = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let held = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        locker.execute_batch("COMMIT").unwrap();
    });
    let t = Instant::now();
    let (st, text) = api.post_raw("/v1/consents", &intake, b"{".to_vec()).await;
    let waited = t.elapsed();
    assert_eq!(st, 400, "{text}");
    assert!(text.contains("json_malformed"), "{text}");
    assert!(
        waited >= Duration::from_millis(1000),
        "answered after {waited:?}: before the lock was let go, so without its row"
    );
    let (st, _) = api
        .post_raw("/v1/consents", "hd_nope", b"{}".to_vec())
        .await;
    assert_eq!(st, 401);
    held.join().unwrap();
    // the refusal without a token: at once or by the server's flush within a second or two
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        rows_after(&w, start),
        [
            refused(&intake_id, "json_malformed:"),
            refused("unauthenticated", "token_invalid:Authorization"),
        ]
    );

    // a row the store refuses to write (a trigger stands in for a full disk): not answered
    // as a refusal; the refusals without a token are written once the store takes them
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER no_refusals BEFORE INSERT ON audit WHEN NEW.action = 'refused'
         BEGIN SELECT RAISE(ABORT, 'the test refuses this row'); END;",
    )
    .unwrap();
    let start = last_row(&w).0;
    let (st, text) = api.post_raw("/v1/consents", &intake, b"{".to_vec()).await;
    assert_eq!(st, 500, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(e["code"], "internal", "{text}");
    let (st, _) = api
        .post_raw("/v1/consents", "hd_nope", b"{}".to_vec())
        .await;
    assert_eq!(st, 401, "refused at once, written within a second or two");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rows_after(&w, start), []);
    conn.execute_batch("DROP TRIGGER no_refusals").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        rows_after(&w, start),
        [refused("unauthenticated", "token_invalid:Authorization")]
    );
    let (st, _) = api.post_raw("/v1/consents", &intake, b"{".to_vec()).await;
    assert_eq!(st, 400);

    // repro 03: a purpose holding a member's name is refused, named nowhere
    let name = rows.1[0]["name"].clone();
    assert!(name.chars().count() >= 2, "{name}");
    let refs: BTreeMap<String, String> = rows
        .1
        .iter()
        .chain(&rows.2)
        .map(|p| (p["id_number"].clone(), "cr_unknown".to_string()))
        .collect();
    let mut body = request(&rows, &refs);
    body["purpose"] = json!(format!("低保 {name}"));
    let start = last_row(&w).0;
    let (st, text) = api
        .post_raw(
            "/v1/verifications?wait=5",
            &intake,
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(st, 422, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str()),
        (Some("purpose_invalid"), Some("purpose"))
    );
    assert!(!text.contains(&name), "{text}");

    // repeated query parameters: refused naming the parameter, not the last one taken
    let (st, text) = api
        .post_raw("/v1/verifications?wait=1&wait=2", &intake, b"{}".to_vec())
        .await;
    assert_eq!(st, 400, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str()),
        (Some("parameter_invalid"), Some("wait"))
    );
    let (st, text) = api.get("/v1/audit?after=1&after=2", &auditor).await;
    assert_eq!(st, 400, "{text}");
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str()),
        (Some("parameter_invalid"), Some("after"))
    );
    assert_eq!(
        rows_after(&w, start),
        [
            refused(&intake_id, "purpose_invalid:purpose"),
            refused(&intake_id, "parameter_invalid:wait"),
            refused(&auditor_id, "parameter_invalid:after"),
        ]
    );
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    let holding: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE instr(purpose, ?1) OR instr(outcome, ?1)",
            [&name],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(holding, 0, "no audit row holds the name");
}

/// Repro 10: serve stopped by SIGTERM wrote the refusals without a token counted in its last
/// second (and a refusal committed just before) after the head file's last write, and exited
/// without writing it again: those rows deleted from the end of the log still verified as
/// `chain ok`. Now the head file names the log's last row when serve has exited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_head_file_names_the_last_row_written_when_serve_is_stopped() {
    let w = World::new(12);
    let (_sim, sim_addr) = w.sim(FAST);
    let cfg = w.serve_config(&sim_addr, "");
    let (mut serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, intake) = w.token("intake", COUNTY);
    let (st, _) = api.post_raw("/v1/consents", &intake, b"{".to_vec()).await;
    assert_eq!(st, 400);
    // the first is written at once, the others wait for the next flush: the stop's
    for _ in 0..5 {
        let (st, _) = api
            .post_raw("/v1/consents", "hd_nope", b"{}".to_vec())
            .await;
        assert_eq!(st, 401);
    }
    let (st, _) = api.get("/v1/no-such-route", "").await;
    assert_eq!(st, 404);
    let pid = serve.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = serve.0.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "serve exits 0 when stopped");

    let (seq, hash) = last_row(&w);
    let rows = rows_after(&w, 0);
    assert!(
        rows.iter()
            .any(|r| r.0 == "unauthenticated" && r.2.contains("refused since the last row")),
        "{rows:?}"
    );
    let head = std::fs::read_to_string(w.path("hedui.db.audit-head")).unwrap();
    assert_eq!(
        head.trim(),
        format!("{seq} {hash}"),
        "the head names the last row"
    );
    // so the last row deleted is found
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    conn.execute("DELETE FROM audit WHERE seq = ?1", [seq])
        .unwrap();
    let out = hedui(&["audit", "verify", "--store", s(&w.path("hedui.db"))]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
