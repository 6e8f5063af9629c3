//! Region scoping of admin and auditor tokens (issue #4 item 6): a county's admin grants,
//! revokes and reads only within its county; a county's auditor reads its county's rows.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_and_auditors_of_a_county_stay_in_their_county() {
    let w = World::new(12);
    let rows = clean_households(&w, 12).into_iter().next().unwrap();
    let (_sim, sim_addr) = w.sim(FAST);
    let cfg = w.serve_config(&sim_addr, "");
    let (_serve, addr) = w.serve(&cfg);
    let api = Api::new(&w, &addr);
    let (_, admin_a) = w.token("admin", COUNTY);
    let (intake_b_id, intake_b) = w.token("intake", "620502");
    let (_, auditor_a) = w.token("auditor", COUNTY);
    let (_, auditor_all) = w.token("auditor", "*");

    // granting: only regions inside the admin's own
    for (regions, field) in [
        (json!(["*"]), "regions[0]"),
        (json!(["620503", "6205"]), "regions[1]"),
    ] {
        let (st, v) = api
            .post(
                "/v1/tokens",
                &admin_a,
                &json!({"roles": ["intake"], "regions": regions}),
            )
            .await;
        assert_eq!(
            (st, &v["code"], &v["field"]),
            (403, &json!("region_forbidden"), &json!(field))
        );
    }
    let (st, v) = api
        .post(
            "/v1/tokens",
            &admin_a,
            &json!({"roles": ["intake"], "regions": ["620503"], "label": "window 3"}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    // revoking: the new token works, is revoked by its admin, and is refused from then on
    let window3_id = v["id"].as_str().unwrap().to_string();
    let window3 = v["token"].as_str().unwrap().to_string();
    let (st, _) = api
        .get("/v1/verifications/v_000000000000000000000000", &window3)
        .await;
    assert_eq!(st, 404, "an active token reaches the route");
    // county A's admin cannot revoke county B's token (nor learn that it exists)
    let (st, v) = api
        .delete(&format!("/v1/tokens/{intake_b_id}"), &admin_a)
        .await;
    assert_eq!((st, &v["code"]), (404, &json!("token_unknown")));
    let (st, v) = api
        .delete(&format!("/v1/tokens/{window3_id}"), &admin_a)
        .await;
    assert_eq!((st, &v["revoked"]), (200, &json!(true)), "{v}");
    let (st, body) = api
        .get("/v1/verifications/v_000000000000000000000000", &window3)
        .await;
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("token_invalid"), "{body}");
    // two Authorization headers: refused, whichever comes first (neither token acts)
    for (first, second) in [(&admin_a, &window3), (&window3, &admin_a)] {
        let r = api
            .http
            .get(format!(
                "{}/v1/verifications/v_000000000000000000000000",
                api.base
            ))
            .header("authorization", format!("Bearer {first}"))
            .header("authorization", format!("Bearer {second}"))
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (st, &v["code"]),
            (400, &json!("authorization_duplicate")),
            "{v}"
        );
        assert!(!v.to_string().contains(first.as_str()), "{v}");
    }
    let (st, v) = api
        .post(
            "/v1/tokens",
            &admin_a,
            &json!({"roles": ["intake"], "regions": ["620503"],
                                              "label": rows.1[0]["id_number"]}),
        )
        .await;
    assert_eq!((st, &v["code"]), (422, &json!("label_invalid")));
    assert!(!v.to_string().contains(&rows.1[0]["id_number"]));

    // county B verifies one of its households (persons may live anywhere)
    let mut consents = BTreeMap::new();
    for p in rows.1.iter().chain(&rows.2) {
        let (st, v) = api
            .post(
                "/v1/consents",
                &intake_b,
                &json!({"id_number": p["id_number"], "region_code": "620502",
                        "purpose": "dibao application", "valid_until": consent_until()}),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        consents.insert(
            p["id_number"].clone(),
            v["consent_ref"].as_str().unwrap().to_string(),
        );
    }
    let mut body = request(&rows, &consents);
    body["region_code"] = json!("620502");
    let (st, v) = verify(&api, &intake_b, &body).await;
    assert_eq!(st, 200, "{v}");
    let job = v["id"].as_str().unwrap().to_string();

    // revoking: county A's admin cannot revoke county B's consent
    let b_ref = consents.values().next().unwrap().clone();
    let r = api
        .http
        .delete(format!("{}/v1/consents/{b_ref}", api.base))
        .bearer_auth(&admin_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "consent_forbidden");

    // reading the audit log: county A's auditor sees none of county B's job rows; `*` does
    let rows_of = |text: &str| -> Vec<Value> {
        let v: Value = serde_json::from_str(text).unwrap();
        v["rows"].as_array().unwrap().clone()
    };
    let (st, text) = api.get("/v1/audit?limit=10000", &auditor_all).await;
    assert_eq!(st, 200);
    let all = rows_of(&text);
    let of_job = all.iter().filter(|r| r["job_id"] == job.as_str()).count();
    let queries = all
        .iter()
        .filter(|r| r["job_id"] == job.as_str() && r["action"] == "source_query")
        .count();
    let persons = rows.1.len() + rows.2.len();
    assert_eq!(queries, persons, "one source_query row per person");
    // and verification_accepted, report_built
    assert!(of_job >= persons + 2, "{of_job} rows of the job");
    let (st, text) = api.get("/v1/audit?limit=10000", &auditor_a).await;
    assert_eq!(st, 200);
    let a = rows_of(&text);
    assert_eq!(a.iter().filter(|r| r["job_id"] == job.as_str()).count(), 0);
    // a wrong method gets the same {code, field, message} body as every other refusal
    let r = api
        .http
        .put(format!("{}/v1/consents", api.base))
        .bearer_auth(&intake_b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.headers().contains_key("allow"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "method_not_allowed");
    // a path segment that is not UTF-8 gets the same kind of body, naming no value
    let (st, text) = api.get("/v1/verifications/v_%FF%FE", &intake_b).await;
    assert_eq!(st, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["code"].as_str(), v["field"].as_str()),
        (Some("path_invalid"), Some("path"))
    );
    // HTTP/1.1 only (session 25's attack: over HTTP/2 a client that never finished its
    // headers kept its connection for ever, hyper's header timeout being HTTP/1's): ALPN
    // says http/1.1, and a client that speaks only HTTP/2 is refused at the handshake
    let health = format!("{}/v1/health", api.base);
    let r = api.http.get(&health).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.version()),
        (200, reqwest::Version::HTTP_11)
    );
    let h2_only = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(w.path("certs/ca.pem")).unwrap())
                .unwrap(),
        )
        .use_rustls_tls()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert!(h2_only.get(&health).send().await.is_err());
    // a body far over the limit (16 KiB here) is answered 413 with its reason, not a reset
    // connection: hedui reads it on before refusing
    let (st, text) = api
        .post_raw("/v1/verifications", &intake_b, vec![b' '; 2 << 20])
        .await;
    assert_eq!(st, 413, "{text}");
    assert!(text.contains("body_too_large"), "{text}");
    // bad parameters are refused, not ignored
    for q in ["limit=-1", "after=abc", "verify=maybe", "limt=5"] {
        let (st, text) = api.get(&format!("/v1/audit?{q}"), &auditor_all).await;
        assert_eq!(st, 400, "{q}: {text}");
    }
    // a purpose over 200 characters, and a date chrono would read but is not YYYY-MM-DD
    let person = &rows.1[0]["id_number"];
    let consent = |region: &str, until: &str| {
        json!({"id_number": person, "region_code": region, "purpose": "dibao",
               "valid_until": until})
    };
    let today = hedui::domain::date::today();
    let in_days = |n: u64| (today + chrono::Days::new(n)).to_string();
    for (field, code, body) in [
        (
            "purpose",
            "purpose_too_long",
            json!({"id_number": person, "region_code": "620502", "purpose": "x".repeat(201),
                           "valid_until": consent_until()}),
        ),
        (
            "valid_until",
            "date_invalid",
            consent("620502", "+10000-01-01"),
        ),
        // Found by the s7 attack: a consent for life (9999-12-31) was registered. At most
        // `[limits] max_consent_days` (366 by default) from today, and not in the past.
        (
            "valid_until",
            "valid_until_too_late",
            consent("620502", "9999-12-31"),
        ),
        (
            "valid_until",
            "valid_until_too_late",
            consent("620502", &in_days(367)),
        ),
        (
            "valid_until",
            "consent_expired",
            consent("620502", "2020-01-01"),
        ),
        // Found by the s7 attack: a short region code was `403 region_forbidden`, as if the
        // token lacked the region; it is a format error naming the field.
        (
            "region_code",
            "region_code_invalid",
            consent("62050", &in_days(30)),
        ),
        (
            "region_code",
            "region_code_invalid",
            consent("62050X", &in_days(30)),
        ),
    ] {
        let (st, v) = api.post("/v1/consents", &intake_b, &body).await;
        assert_eq!(
            (st, &v["code"], &v["field"]),
            (422, &json!(code), &json!(field)),
            "{v}"
        );
    }
    // the last day allowed, and a full-width region code read as its digits (as ID numbers)
    let (st, v) = api
        .post(
            "/v1/consents",
            &intake_b,
            &consent("６２０５０２", &in_days(366)),
        )
        .await;
    assert_eq!((st, &v["valid_until"]), (201, &json!(in_days(366))), "{v}");
    // a well-formed code of another county is still the token's business: 403
    let (st, v) = api
        .post("/v1/consents", &intake_b, &consent(COUNTY, &in_days(30)))
        .await;
    assert_eq!((st, &v["code"]), (403, &json!("region_forbidden")), "{v}");
    // the command line revokes too (the operator of the store)
    w.revoke_token(&intake_b_id);
    let (st, _) = api
        .get(&format!("/v1/verifications/{job}"), &intake_b)
        .await;
    assert_eq!(st, 401);
    // county A's own admin's actions are visible to county A's auditor
    assert!(a.iter().any(|r| r["action"] == "token_created"), "{text}");
    assert!(a.len() < all.len());
}
