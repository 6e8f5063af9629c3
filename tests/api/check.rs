//! `hedui check` (issue #4 item 8): the same verification as the API, from the command line.

use super::*;

fn source_queries(w: &World) -> i64 {
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    conn.query_row(
        "SELECT count(*) FROM audit WHERE action = 'source_query' AND actor = 'cli'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// `hedui check --config CFG HOUSEHOLD --out REPORT` started in the background, its output
/// piped.
fn spawn_check(
    cfg: &std::path::Path,
    household: &std::path::Path,
    report: &std::path::Path,
) -> std::process::Child {
    std::process::Command::new(bin())
        .args([
            "check",
            "--config",
            s(cfg),
            s(household),
            "--out",
            s(report),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_on_the_command_line_agrees_with_the_api_and_refuses_before_querying() {
    let w = World::new(20);
    let rows = clean_households(&w, 20).into_iter().next().unwrap();
    let (_sim, sim_addr) = w.sim(FAST);
    let cfg = w.serve_config(&sim_addr, "");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, intake) = w.token("intake", COUNTY);
    let consents = register_consents(&api, &intake, rows.1.iter().chain(&rows.2)).await;
    // a consent for no source at all is refused, naming the field
    let (st, v) = api
        .post(
            "/v1/consents",
            &intake,
            &json!({"id_number": rows.1[0]["id_number"], "region_code": COUNTY,
                    "purpose": "dibao application", "valid_until": consent_until(), "scope": []}),
        )
        .await;
    assert_eq!(
        (st, &v["code"], &v["field"]),
        (422, &json!("scope_empty"), &json!("scope"))
    );
    let body = request(&rows, &consents);
    let (status, via_api) = verify(&api, &intake, &body).await;
    assert_eq!(status, 200, "{via_api}");
    let via_api = w.open(&via_api["sealed_report"]);

    let household = w.path("household.json");
    std::fs::write(&household, body.to_string()).unwrap();
    let report = w.path("check-report.json");
    let out = hedui(&[
        "check",
        "--config",
        s(&cfg),
        s(&household),
        "--out",
        s(&report),
    ]);
    let det = via_api["determination"].as_str().unwrap();
    let want = match det {
        "eligible" => 0,
        "referred" => 1,
        "ineligible" => 3,
        other => panic!("determination {other}"),
    };
    assert_eq!(
        out.status.code(),
        Some(want),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sealed: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(essence(&w.open(&sealed)), essence(&via_api));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("unverified sources"),
        "every department answered"
    );
    let queried = source_queries(&w);
    let persons = (rows.1.len() + rows.2.len()) as i64;
    assert_eq!(
        queried, persons,
        "one audited query row per person, naming every source"
    );
    // With every department down, the check says which did not answer and why, beside its
    // determination (the session 28 trial: `referred` and nothing else)
    let down = w.path("down.toml");
    std::fs::write(
        &down,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(sim_addr.as_str(), "127.0.0.1:9"),
    )
    .unwrap();
    let out_down = hedui(&[
        "check",
        "--config",
        s(&down),
        s(&household),
        "--out",
        s(&w.path("down-report.json")),
    ]);
    let err = String::from_utf8_lossy(&out_down.stderr);
    assert_eq!(out_down.status.code(), Some(1), "{err}");
    let said = err
        .lines()
        .find(|l| l.starts_with("  unverified sources: "))
        .unwrap_or_else(|| panic!("{err}"));
    for k in hedui::SourceKind::ALL {
        assert!(
            said.contains(&format!("{} (source_unreachable)", k.name())),
            "{}: {said}",
            k.name()
        );
    }
    // (each person asked again, and audited)
    let queried = source_queries(&w);
    assert_eq!(queried, 2 * persons);

    // An output that cannot be written is refused (exit 2) before any source is asked.
    let refused_out = |path: &std::path::Path| -> String {
        let out = hedui(&[
            "check",
            "--config",
            s(&cfg),
            s(&household),
            "--out",
            s(path),
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(source_queries(&w), queried);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused_out(&w.path("no-such-dir/report.json"));
    assert!(err.contains("no-such-dir does not exist"), "{err}");
    assert!(!err.contains("placeholder"), "{err}");
    // a file where the folder should be is said to be one (session 22's attack: "does not
    // exist")
    std::fs::write(w.path("a-file"), "not a folder").unwrap();
    let err = refused_out(&w.path("a-file/report.json"));
    assert!(err.contains("a-file is not a folder"), "{err}");
    // a folder as the report's file is said to be one (session 22's attack: the raw
    // `Is a directory (os error 21)`)
    let err = refused_out(&w.root);
    assert!(err.contains("for writing: it is a folder"), "{err}");
    assert!(!err.contains("os error"), "{err}");

    // The README's example cache secret, pasted as it is: said (found by the s7 newcomer).
    let pasted = w.path("pasted.toml");
    std::fs::write(
        &pasted,
        std::fs::read_to_string(&cfg).unwrap().replace(
            "another-test-secret-of-at-least-32-bytes",
            "replace-me-with-48-random-bytes-in-base64-000000",
        ),
    )
    .unwrap();
    let out = hedui(&[
        "check",
        "--config",
        s(&pasted),
        s(&household),
        "--out",
        s(&w.path("no-such-dir/report.json")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cache_secret is the README's placeholder"),
        "{err}"
    );
    assert_eq!(source_queries(&w), queried);

    // Bad input: the reason as {code, field, message} on stderr, exit 4, nothing queried.
    let mut bad = body.clone();
    bad["declared_annual_income"] = json!("-5.00");
    std::fs::write(&household, bad.to_string()).unwrap();
    // an existing file given as --out is neither truncated nor removed by a refusal
    let refused = w.path("refused.json");
    std::fs::write(&refused, "an earlier report").unwrap();
    let out = hedui(&[
        "check",
        "--config",
        s(&cfg),
        s(&household),
        "--out",
        s(&refused),
    ]);
    assert_eq!(out.status.code(), Some(4));
    let err: Value = serde_json::from_slice(out.stderr.trim_ascii()).unwrap();
    assert_eq!(err["code"], "money_negative");
    assert_eq!(err["field"], "declared_annual_income");
    assert_eq!(
        std::fs::read_to_string(&refused).unwrap(),
        "an earlier report"
    );
    assert_eq!(source_queries(&w), queried);
}

/// Found by session 22's second attack: a consent revoked through `hedui serve` while
/// `hedui check` (another process, the same store) asked the departments was not seen, and
/// check went on asking and made its report. It looks at the store while it runs: it stops,
/// makes no report and exits 4, with the job refused and audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_stops_when_serve_revokes_a_consent_while_the_departments_are_asked() {
    let w = World::new(20);
    let rows = clean_households(&w, 1).remove(0);
    let (_sim, sim_addr) = w.sim(SLOW_TAX);
    let cfg = w.serve_config(&sim_addr, RETRYING);
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, intake) = w.token("intake", COUNTY);
    let consents = register_consents(&api, &intake, rows.1.iter().chain(&rows.2)).await;
    let household = w.path("household.json");
    std::fs::write(&household, request(&rows, &consents).to_string()).unwrap();
    let report = w.path("check-report.json");
    let check = spawn_check(&cfg, &household, &report);
    // revoked once check has asked tax
    let t = Instant::now();
    while sim_requests(&w, &sim_addr, "tax").await == 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "tax never asked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let person = rows.1[0]["id_number"].clone();
    assert_eq!(api.revoke_consent(&intake, &consents[&person]).await, 200);
    let out = tokio::task::spawn_blocking(move || check.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("refused (consent_revoked"), "{err}");
    assert!(!report.exists());
    // no request after the refusal (the retries would have gone on for ~1.5 s more)
    let then = sim_requests(&w, &sim_addr, "tax").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim_requests(&w, &sim_addr, "tax").await, then);
    assert_eq!(source_queries(&w), 0, "no source_query rows: no report");
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    let actions: Vec<String> = conn
        .prepare(
            "SELECT action FROM audit WHERE job_id = (SELECT id FROM jobs WHERE token_id = 'cli')
             ORDER BY rowid",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        actions,
        vec!["verification_accepted", "source_query_sent", "job_refused"]
    );
    let status: String = conn
        .query_row("SELECT status FROM jobs WHERE token_id = 'cli'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(status, "refused");
}

/// Found by session 22's third attack: a `hedui check` interrupted while it asked the
/// departments left its job `queued` with its request (the persons' ID numbers) in the store,
/// and the next `hedui serve` on the store resumed it, asking the departments again for a
/// report nobody would read. Now: Ctrl-C (SIGINT) stores the job refused (`interrupted`,
/// audited) and exits 130; a check killed outright leaves its job `queued` without a request;
/// a server started afterwards resumes neither and asks no department.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_check_is_refused_and_never_resumed_by_serve() {
    let w = World::new(20);
    let rows = clean_households(&w, 1).remove(0);
    let (_sim, sim_addr) = w.sim(SLOW_TAX);
    let cfg = w.serve_config(&sim_addr, RETRYING);
    let consents = {
        let (_serve, addr) = w.serve(&cfg);
        let api = Api::new(&w, &addr);
        let (_, intake) = w.token("intake", COUNTY);
        register_consents(&api, &intake, rows.1.iter().chain(&rows.2)).await
    };
    let household = w.path("household.json");
    std::fs::write(&household, request(&rows, &consents).to_string()).unwrap();
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    let cli_jobs =
        |conn: &rusqlite::Connection| -> Vec<(String, String, Option<String>, Option<String>)> {
            conn.prepare(
            "SELECT id, status, determination, request FROM jobs WHERE token_id = 'cli' ORDER BY created_at, rowid",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
        };
    let mut asked = 0;
    for signal in ["-INT", "-KILL"] {
        let report = w.path(&format!("check{signal}.json"));
        let check = spawn_check(&cfg, &household, &report);
        let t = Instant::now();
        while sim_requests(&w, &sim_addr, "tax").await == asked {
            assert!(t.elapsed() < Duration::from_secs(10), "tax never asked");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let kill = std::process::Command::new("kill")
            .args([signal, &check.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = tokio::task::spawn_blocking(move || check.wait_with_output().unwrap())
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if signal == "-INT" {
            assert_eq!(out.status.code(), Some(130), "{err}");
            assert!(
                err.contains("refused (interrupted: SIGINT (Ctrl-C) while"),
                "{err}"
            );
        } else {
            assert_eq!(out.status.code(), None, "killed by the signal: {err}");
        }
        assert!(!report.exists());
        // no request after the interruption (the retries would have gone on ~1.5 s more)
        asked = sim_requests(&w, &sim_addr, "tax").await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(sim_requests(&w, &sim_addr, "tax").await, asked, "{signal}");
    }
    let jobs = cli_jobs(&conn);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(
        (
            jobs[0].1.as_str(),
            jobs[0].2.as_deref(),
            jobs[0].3.as_deref()
        ),
        ("refused", Some("interrupted"), None)
    );
    assert_eq!(
        (
            jobs[1].1.as_str(),
            jobs[1].2.as_deref(),
            jobs[1].3.as_deref()
        ),
        ("queued", None, None),
        "killed: queued, no request (no ID numbers) kept"
    );
    assert_eq!(
        job_actions(&w, &jobs[0].0),
        vec!["verification_accepted", "source_query_sent", "job_refused"]
    );
    assert_eq!(
        job_actions(&w, &jobs[1].0),
        vec!["verification_accepted", "source_query_sent"]
    );
    // a server started on the store resumes neither: no department is asked
    let (_serve, _addr) = w.serve(&cfg);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim_requests(&w, &sim_addr, "tax").await, asked);
    assert_eq!(cli_jobs(&conn), jobs);
    let resumed: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'job_resumed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(resumed, 0);
}
