//! Refusals are audited with the code and field answered, by one path every handler goes
//! through, and no ID number in any spelling is named back or stored (session 17's attack:
//! its repros 03, 07 and 08).

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

fn last_seq(w: &World) -> i64 {
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    conn.query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))
        .unwrap()
}

/// Every text column of the store's audit rows, token labels and consent purposes.
fn stored_text(w: &World) -> String {
    let conn = rusqlite::Connection::open(w.path("hedui.db")).unwrap();
    let mut out = String::new();
    for sql in [
        "SELECT actor || '|' || action || '|' || job_id || '|' || purpose || '|' || consent_ref
            || '|' || person || '|' || source || '|' || outcome FROM audit",
        "SELECT label FROM tokens",
        "SELECT purpose FROM consents",
    ] {
        let mut st = conn.prepare(sql).unwrap();
        for t in st.query_map([], |r| r.get::<_, String>(0)).unwrap() {
            out.push_str(&t.unwrap());
            out.push('\n');
        }
    }
    out
}

/// The spellings of `id` the attacks used: groups of four, 9 + 9, hyphens, full-width
/// groups, one digit at a time; one digit at a time with a zero-width space between, and
/// groups joined by a soft hyphen and a BOM (repro 02 of session 17's second attack).
fn spellings(id: &str) -> Vec<String> {
    let wide: String = id
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
            'X' => 'Ｘ',
            c => c,
        })
        .collect();
    let w: Vec<char> = wide.chars().collect();
    let group = |v: &[char], at: &[usize], sep: &str| -> String {
        let mut out = String::new();
        let mut start = 0;
        for &end in at.iter().chain(std::iter::once(&v.len())) {
            if start > 0 {
                out.push_str(sep);
            }
            out.extend(&v[start..end]);
            start = end;
        }
        out
    };
    let a: Vec<char> = id.chars().collect();
    vec![
        group(&a, &[4, 8, 12, 16], " "),
        group(&a, &[9], " "),
        group(&a, &[6, 10, 14], "-"),
        group(&w, &[4, 8, 12, 16], "\u{3000}"),
        id.chars()
            .flat_map(|c| [c, ' '])
            .collect::<String>()
            .trim()
            .to_string(),
        spread(id, '\u{200b}'),
        format!("{}\u{00ad}{}\u{feff}{}", &id[..6], &id[6..14], &id[14..]),
    ]
}

/// `id`'s characters with `sep` between each two.
fn spread(id: &str, sep: char) -> String {
    id.chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(&sep.to_string())
}

/// Repro 03: `POST /v1/tokens` answered `422 region_code_invalid` and `422 value_unknown`,
/// and `DELETE /v1/tokens/<malformed id>` `404`, with no audit row (each handler had to
/// call `refuse` itself); an admin's consent wrote a `refused role_forbidden:` row for the
/// intake role tried first, though the answer was `201`. Now every `4xx` answer is audited
/// by the router's middleware with the code and field answered, in order. Also item 4: an
/// `after` past the log's end and an absurd `wait` are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_audited_with_the_code_and_field_answered() {
    let w = World::new(12);
    let rows = clean_households(&w, 12).into_iter().next().unwrap();
    let id = rows.1[0]["id_number"].clone();
    let (_sim, sim_addr) = w.sim(FAST);
    let cfg = w.serve_config(&sim_addr, "");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (admin_id, admin) = w.token("admin", "6205");
    let (intake_id, intake) = w.token("intake", COUNTY);
    let (auditor_id, auditor) = w.token("auditor", "*");
    let start = last_seq(&w);
    let mut answered: Vec<(u16, Value)> = Vec::new();
    for body in [
        json!({"roles": ["intake"], "regions": ["62x"], "label": "a"}),
        json!({"roles": ["bogus"], "regions": ["620503"], "label": "a"}),
        json!({"roles": ["intake"], "regions": ["620503"], "label": spellings(&id)[0]}),
        json!({"roles": ["intake"], "regions": ["6206"], "label": "a"}),
    ] {
        answered.push(api.post("/v1/tokens", &admin, &body).await);
    }
    answered.push(api.delete("/v1/tokens/abc", &admin).await);
    answered.push(api.delete("/v1/tokens/tok_0123456789abcdef", &admin).await);
    // an admin registers a consent: one row, no refusal of the intake role tried first
    let (st, v) = api
        .post(
            "/v1/consents",
            &admin,
            &json!({"id_number": id, "region_code": COUNTY, "purpose": "dibao application",
                    "valid_until": consent_until()}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let reference = v["consent_ref"].as_str().unwrap().to_string();
    // item 4: a cursor past the log's end (here an ID number's length) is not named back
    let (st, text) = api
        .get("/v1/audit?after=620503197503245401", &auditor)
        .await;
    answered.push((st, serde_json::from_str(&text).unwrap()));
    assert!(!text.contains("620503197503245401"), "{text}");
    let (st, text) = api
        .post_raw(
            "/v1/verifications?wait=99999999999999999999999",
            &intake,
            b"{}".to_vec(),
        )
        .await;
    answered.push((st, serde_json::from_str(&text).unwrap()));
    // a wait of an hour is taken (and capped): the body is what is refused
    let (st, text) = api
        .post_raw("/v1/verifications?wait=3600", &intake, b"{}".to_vec())
        .await;
    answered.push((st, serde_json::from_str(&text).unwrap()));
    // the fallback's refusal too (no token looked at: `unauthenticated`)
    let (st, text) = api.get("/v1/nowhere", &admin).await;
    answered.push((st, serde_json::from_str(&text).unwrap()));

    let codes: Vec<(u16, &str, &str)> = answered
        .iter()
        .map(|(st, v)| {
            (
                *st,
                v["code"].as_str().unwrap(),
                v["field"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (422, "region_code_invalid", "regions[0]"),
            (422, "value_unknown", "roles[0]"),
            (422, "label_invalid", "label"),
            (403, "region_forbidden", "regions[0]"),
            (404, "token_unknown", "id"),
            (404, "token_unknown", "id"),
            (400, "parameter_invalid", "after"),
            (400, "wait_invalid", "wait"),
            (422, "field_missing", "household_id"),
            (404, "route_unknown", ""),
        ]
    );
    let refused = |actor: &str, outcome: &str| {
        (
            actor.to_string(),
            "refused".to_string(),
            outcome.to_string(),
        )
    };
    let consent_row = rows_after(&w, start)
        .into_iter()
        .find(|r| r.1 == "consent_registered")
        .expect("the consent is audited");
    assert_eq!(consent_row.0, admin_id);
    assert_eq!(
        rows_after(&w, start),
        [
            refused(&admin_id, "region_code_invalid:regions[0]"),
            refused(&admin_id, "value_unknown:roles[0]"),
            refused(&admin_id, "label_invalid:label"),
            refused(&admin_id, "region_forbidden:regions[0]"),
            refused(&admin_id, "token_unknown:id"),
            refused(&admin_id, "token_unknown:id"),
            consent_row,
            refused(&auditor_id, "parameter_invalid:after"),
            refused(&intake_id, "wait_invalid:wait"),
            refused(&intake_id, "field_missing:household_id"),
            refused("unauthenticated", "route_unknown:"),
        ]
    );
    // a cursor at the log's end is a page, empty
    let end = last_seq(&w);
    let (st, text) = api.get(&format!("/v1/audit?after={end}"), &auditor).await;
    assert_eq!(st, 200, "{text}");
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (page["next_after"].as_i64(), page["more"].as_bool()),
        (Some(end), Some(false))
    );
    // the admin's revocation of its consent: no refusal row either
    let before = last_seq(&w);
    assert_eq!(api.revoke_consent(&admin, &reference).await, 200);
    let after: Vec<String> = rows_after(&w, before).into_iter().map(|r| r.1).collect();
    assert_eq!(after, ["consent_revoked"]);
}

/// Repros 07 and 08: an unknown key holding an ID number in groups
/// (`6205 0319 7503 2454 0X`) was answered and audited as `6205 **** **** **** 0X`, a
/// 300-character key was audited whole, and a `purpose` or `label` holding the number in
/// groups, full-width or one digit at a time was taken and stored (the purpose in every
/// audit row). `hedui check` printed the key too. The second attack's repro 02: with a
/// zero-width space between the digits the key was named back, audited and printed as
/// `6?2?0?5?…0?X`, and such a label was taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_number_in_any_spelling_is_neither_named_back_nor_stored() {
    let w = World::new(12);
    let rows = clean_households(&w, 12).into_iter().next().unwrap();
    let id = rows.1[0]["id_number"].clone();
    let (_sim, sim_addr) = w.sim(FAST);
    let cfg = w.serve_config(&sim_addr, "");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, admin) = w.token("admin", "6205");
    let (intake_id, intake) = w.token("intake", COUNTY);
    let start = last_seq(&w);
    let consent = |purpose: &str| {
        json!({"id_number": id, "region_code": COUNTY, "purpose": purpose,
               "valid_until": consent_until()})
    };
    // a verification's body with bogus consent references: refused before they are looked at
    let refs: BTreeMap<String, String> = rows
        .1
        .iter()
        .chain(&rows.2)
        .map(|p| (p["id_number"].clone(), "cr_unknown".to_string()))
        .collect();
    let household = request(&rows, &refs);
    let mut expected: Vec<String> = Vec::new();
    let mut answers = String::new();
    for spelled in spellings(&id) {
        let mut with_key = consent("dibao application");
        with_key[spelled.as_str()] = json!("1");
        for (path, token, body, code, field) in [
            (
                "/v1/consents",
                &intake,
                with_key,
                "field_unknown",
                "?".to_string(),
            ),
            (
                "/v1/consents",
                &intake,
                consent(&format!("dibao {spelled}")),
                "purpose_invalid",
                "purpose".into(),
            ),
            (
                "/v1/verifications",
                &intake,
                {
                    let mut b = household.clone();
                    b["members"][0][spelled.as_str()] = json!(1);
                    b
                },
                "field_unknown",
                "members[0].?".into(),
            ),
            (
                "/v1/verifications",
                &intake,
                {
                    let mut b = household.clone();
                    b["purpose"] = json!(format!("review {spelled}"));
                    b
                },
                "purpose_invalid",
                "purpose".into(),
            ),
            (
                "/v1/tokens",
                &admin,
                json!({"roles": ["intake"], "regions": [COUNTY], "label": format!("w {spelled}")}),
                "label_invalid",
                "label".into(),
            ),
        ] {
            let (st, text) = api
                .post_raw(path, token, serde_json::to_vec(&body).unwrap())
                .await;
            let e: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                (st, e["code"].as_str(), e["field"].as_str()),
                (422, Some(code), Some(field.as_str())),
                "{path} {spelled}: {text}"
            );
            expected.push(format!("{code}:{field}"));
            answers.push_str(&text);
        }
    }
    // a 300-character key: named back cut at 64 characters, and so audited
    let mut long = consent("dibao application");
    long["k".repeat(300)] = json!(1);
    let (st, e) = api.post("/v1/consents", &intake, &long).await;
    let cut = format!("{}...", "k".repeat(64));
    assert_eq!(
        (st, e["code"].as_str(), e["field"].as_str()),
        (422, Some("field_unknown"), Some(cut.as_str())),
        "{e}"
    );
    expected.push(format!("field_unknown:{cut}"));
    let audited: Vec<String> = rows_after(&w, start)
        .into_iter()
        .map(|(actor, action, outcome)| {
            assert_eq!(action, "refused", "{outcome}");
            // the admin's are the label refusals
            assert_eq!(
                actor == intake_id,
                !outcome.starts_with("label_invalid"),
                "{actor} {outcome}"
            );
            outcome
        })
        .collect();
    assert_eq!(audited, expected, "one row per refusal, as answered");

    // `hedui check` with the key: refused (exit 4), named back masked, audited as `cli`
    let k = w.path("k.json");
    let mut body = household.clone();
    body[spellings(&id)[0].as_str()] = json!(1);
    std::fs::write(&k, body.to_string()).unwrap();
    let out = hedui(&["check", "--config", s(&cfg), s(&k)]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(4), "{printed}");
    assert!(
        printed.contains(r#""code":"field_unknown","field":"?""#),
        "{printed}"
    );
    answers.push_str(&printed);
    let last = rows_after(&w, start).pop().unwrap();
    assert_eq!(
        last,
        ("cli".into(), "refused".into(), "field_unknown:?".into())
    );

    // `hedui token add` refuses such a label as `POST /v1/tokens` does
    let out = hedui(&[
        "token",
        "add",
        "--store",
        s(&w.path("hedui.db")),
        "--role",
        "intake",
        "--region",
        COUNTY,
        "--label",
        &spellings(&id)[2],
    ]);
    let printed = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{printed}");
    assert!(
        printed.contains("--label must not hold an ID number"),
        "{printed}"
    );
    answers.push_str(&printed);

    // nothing answered, printed or stored holds the number or a group of it
    let stored = stored_text(&w);
    for text in [&answers, &stored] {
        for spelled in spellings(&id) {
            assert!(!text.contains(&spelled), "{spelled} in {text}");
        }
        for group in [&id[4..8], &id[8..12], &id[12..16]] {
            assert!(!text.contains(group), "{group} in {text}");
        }
        // nor digit by digit as a mark-separated key would show (`6?2?0?…`)
        let shown = spread(&id[4..14], '?');
        assert!(!text.contains(&shown), "{shown} in {text}");
    }
}
