//! The HTTP endpoints of the example server on both adapters (a real TCP
//! port, `awc` as the client) against the real PostgreSQL: happy paths,
//! every documented error with its exact body, group isolation, and that
//! rejected requests change nothing. Each test runs as `<name>::actix`
//! and `<name>::axum`.

use actix_web::http::header::{self, HeaderName, HeaderValue, TryIntoHeaderValue};
use actix_web::http::{Method, StatusCode};
use async_trait::async_trait;
use serde_json::{json, Value};
use stratasync_core::auth::{AuthRejection, AuthUser, GroupResolutionError, SyncAuth};
use stratasync_core::SyncEngine;
use stratasync_tests::http_support::*;
use stratasync_tests::*;

/// A response, read whole.
struct Resp {
    status: StatusCode,
    headers: header::HeaderMap,
    /// Whether the body came chunked, with no declared length.
    streaming: bool,
    body: actix_web::web::Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        json_of(&self.body)
    }

    fn lines(&self) -> Vec<Value> {
        lines_of(&self.body)
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request to send: method, path with query, headers, and a body if
/// any.
struct Req {
    method: Method,
    uri: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Vec<u8>>,
}

impl Req {
    fn get() -> Req {
        Req { method: Method::GET, uri: String::new(), headers: Vec::new(), body: None }
    }

    fn post() -> Req {
        Req { method: Method::POST, ..Req::get() }
    }

    fn uri(mut self, uri: &str) -> Req {
        self.uri = uri.to_owned();
        self
    }

    fn insert_header(mut self, (name, value): (HeaderName, impl TryIntoHeaderValue)) -> Req {
        let value = value.try_into_value().unwrap_or_else(|_| panic!("a valid value of {name}"));
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    fn set_payload(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = Some(body.into());
        self
    }
}

async fn send(server: &TestServer, req: Req) -> Resp {
    let mut request = client().request(req.method, server.url(&req.uri));
    for header in req.headers {
        request = request.insert_header(header);
    }
    let sent = match req.body {
        Some(body) => request.send_body(body).await,
        None => request.send().await,
    };
    let mut res = sent.unwrap_or_else(|e| panic!("{}: {e}", req.uri));
    let status = res.status();
    let headers = res.headers().clone();
    let chunked = headers.get(header::TRANSFER_ENCODING).is_some_and(|v| v == "chunked");
    let streaming = chunked && !headers.contains_key(header::CONTENT_LENGTH);
    let body = res.body().limit(64 * 1024 * 1024).await.expect("body");
    assert_no_internals(&body);
    Resp { status, headers, streaming, body }
}

fn get(uri: &str, user: Option<&str>) -> Req {
    let req = Req::get().uri(uri);
    match user {
        Some(u) => req.insert_header((header::AUTHORIZATION, bearer(u))),
        None => req,
    }
}

fn post_json(uri: &str, user: Option<&str>, body: &Value) -> Req {
    let req = Req::post()
        .uri(uri)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(serde_json::to_vec(body).unwrap());
    match user {
        Some(u) => req.insert_header((header::AUTHORIZATION, bearer(u))),
        None => req,
    }
}

const JSON_TYPE: &str = "application/json; charset=utf-8";

async fn bootstrap_mutate_deltas_and_batch_round_trip(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, _b) = two_workspaces(&db).await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;

    // Full bootstrap: 200 NDJSON stream, metadata first.
    let r = send(&app, get("/sync/bootstrap?type=full&schemaHash=s1&useCFCaching=true", Some("alice"))).await;
    // The metadata carries the server's schema hash, not the client's.
    let hash = stratasync_core::model::client_schema::ClientSchema::from_registry(&taskboard::registry()).hash();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), Some("application/x-ndjson"));
    assert_eq!(r.header(header::CACHE_CONTROL), Some("no-cache"));
    assert_eq!(r.header(header::CONTENT_LENGTH), None);
    assert!(r.streaming, "bootstrap must stream");
    let lines = r.lines();
    assert_eq!(
        lines[0],
        json!({"lastSyncId": "0", "returnedModelsCount": {"Workspace": 1, "Task": 0, "Label": 0, "TaskLabel": 0},
               "schemaHash": hash, "subscribedSyncGroups": [a, "alice"]})
    );
    assert_eq!(
        r.text().lines().next().unwrap(),
        format!(
            r#"{{"lastSyncId":"0","returnedModelsCount":{{"Workspace":1,"Task":0,"Label":0,"TaskLabel":0}},"schemaHash":"{hash}","subscribedSyncGroups":["{a}","alice"]}}"#
        )
    );
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["__class"], json!("Workspace"));
    assert_eq!(lines[1]["id"], json!(a));

    // Mutate: a task, a label and the task's label, in one batch.
    let (task, label) = (new_id(), new_id());
    let txs = vec![
        transaction("INSERT", "Task", &task, json!({"workspaceId": a, "title": "Write tests", "priority": 1})),
        transaction("INSERT", "Label", &label, json!({"workspaceId": a, "name": "bug", "color": "#f00"})),
        transaction("INSERT", "TaskLabel", "ignored", json!({"taskId": task, "labelId": label, "workspaceId": a})),
    ];
    let ids: Vec<Value> = txs.iter().map(|t| t["clientTxId"].clone()).collect();
    let r = send(&app, post_json("/sync/mutate", Some("alice"), &mutate_body(txs))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header(header::CONTENT_TYPE), Some(JSON_TYPE));
    assert_eq!(
        r.json(),
        json!({"lastSyncId": "3", "results": [
            {"clientTxId": ids[0], "success": true, "syncId": "1"},
            {"clientTxId": ids[1], "success": true, "syncId": "2"},
            {"clientTxId": ids[2], "success": true, "syncId": "3"}], "success": true})
    );

    // A failing transaction is a 200 with a failed result.
    let missing = transaction("UPDATE", "Task", &new_id(), json!({"title": "x"}));
    let r = send(&app, post_json("/sync/mutate", Some("alice"), &mutate_body(vec![missing.clone()]))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"lastSyncId": "0", "results": [{"clientTxId": missing["clientTxId"], "error": "Invalid mutation: record not found", "success": false}], "success": false})
    );

    // Deltas.
    let r = send(&app, get("/sync/deltas?after=0", Some("alice"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), Some(JSON_TYPE));
    let page = r.json();
    assert_eq!(page["hasMore"], json!(false));
    assert_eq!(page["lastSyncId"], json!("3"));
    let actions = page["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 3);
    assert_eq!(actions[0]["action"], json!("I"));
    assert_eq!(actions[0]["modelName"], json!("Task"));
    assert_eq!(actions[0]["modelId"], json!(task));
    assert_eq!(actions[0]["clientTxId"], ids[0]);
    assert_eq!(actions[0]["groupId"], json!(a));
    assert_eq!(actions[0]["syncId"], json!("1"));
    let r = send(&app, get("/sync/deltas?after=0001&limit=1", Some("alice"))).await;
    let page = r.json();
    assert_eq!((page["hasMore"].clone(), page["lastSyncId"].clone()), (json!(true), json!("2")));
    let r = send(&app, get("/sync/deltas?after=3", Some("alice"))).await;
    assert_eq!(r.json(), json!({"actions": [], "hasMore": false, "lastSyncId": "3"}));

    // Bootstrap again: the new rows; `onlyModels=` (empty) means no models.
    let r = send(&app, get("/sync/bootstrap?type=full&onlyModels=Task%2CTaskLabel", Some("alice"))).await;
    let lines = r.lines();
    assert_eq!(lines[0]["lastSyncId"], json!("3"));
    assert_eq!(lines[0]["returnedModelsCount"], json!({"Task": 1, "TaskLabel": 1}));
    assert_eq!(lines[1]["__class"], json!("Task"));
    assert_eq!(lines[1]["title"], json!("Write tests"));
    assert_eq!(lines[2]["__class"], json!("TaskLabel"));
    let r = send(&app, get("/sync/bootstrap?onlyModels=", Some("alice"))).await;
    assert_eq!(r.lines().len(), 1);
    assert_eq!(r.lines()[0]["returnedModelsCount"], json!({}));
    let r = send(&app, get(&format!("/sync/bootstrap?type=partial&firstSyncId=3&syncGroups={a}"), Some("alice"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.lines()[0]["subscribedSyncGroups"], json!([a]));

    // Batch loads: by key and by group; a disallowed key ends with an error line.
    let body = json!({"firstSyncId": "0", "requests": [
        {"indexedKey": "id", "keyValue": task, "modelName": "Task"},
        {"groupId": a, "modelName": "Label"},
        {"indexedKey": "taskId", "keyValue": task, "modelName": "TaskLabel"}]});
    let r = send(&app, post_json("/sync/batch", Some("alice"), &body)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), Some("application/x-ndjson"));
    assert_eq!(r.header(header::CACHE_CONTROL), Some("no-cache"));
    assert!(r.streaming);
    let classes: Vec<Value> = r.lines().iter().map(|l| l["__class"].clone()).collect();
    assert_eq!(classes, [json!("Task"), json!("Label"), json!("TaskLabel")]);
    let body = json!({"requests": [{"indexedKey": "id", "keyValue": task, "modelName": "Task"},
                                    {"indexedKey": "title", "keyValue": "x", "modelName": "Task"}]});
    let r = send(&app, post_json("/sync/batch", Some("alice"), &body)).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(
        text.ends_with(
            "{\"message\":\"Indexed key \\\"title\\\" is not allowed for model \\\"Task\\\"\",\"type\":\"error\"}\n"
        ),
        "{text}"
    );
    assert_eq!(r.lines().len(), 2);
    // An empty result is a 200 with an empty body.
    let body = json!({"requests": [{"groupId": "not-mine", "modelName": "Task"}]});
    let r = send(&app, post_json("/sync/batch", Some("alice"), &body)).await;
    assert_eq!((r.status, r.body.len()), (StatusCode::OK, 0));

    // Health.
    let r = send(&app, get("/health", None)).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"status": "ok"})));
}

/// Every documented 400 of the query endpoints, before auth, with exact bodies.
async fn query_validation_failures(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, _) = two_workspaces(&db).await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;
    let before = db.fingerprint().await;

    let type_msg = r#"Invalid option: expected one of "full"|"partial""#;
    let bool_msg = r#"Invalid option: expected one of "true"|"false""#;
    let numeric = "firstSyncId must be a numeric string";
    let required = "firstSyncId is required for partial bootstrap";
    let array = "Invalid input: expected string, received array";
    let after = "After must be a numeric string";
    let limit = "Limit must be a numeric string";
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/sync/bootstrap?type=delta", vec![("type", type_msg)]),
        ("/sync/bootstrap?type=partial", vec![("firstSyncId", required)]),
        ("/sync/bootstrap?type=partial&firstSyncId=", vec![("firstSyncId", numeric), ("firstSyncId", required)]),
        ("/sync/bootstrap?firstSyncId=abc", vec![("firstSyncId", numeric)]),
        ("/sync/bootstrap?firstSyncId=%D9%A1%D9%A2", vec![("firstSyncId", numeric)]),
        ("/sync/bootstrap?firstSyncId=%EF%BC%99", vec![("firstSyncId", numeric)]),
        ("/sync/bootstrap?firstSyncId=9223372036854775808", vec![("firstSyncId", numeric)]),
        ("/sync/bootstrap?firstSyncId=123456789012345678901234567890", vec![("firstSyncId", numeric)]),
        ("/sync/bootstrap?noSyncPackets=yes", vec![("noSyncPackets", bool_msg)]),
        ("/sync/bootstrap?onlyModels=Task&onlyModels=Label", vec![("onlyModels", array)]),
        ("/sync/bootstrap?syncGroups=a&schemaHash=x&syncGroups=b", vec![("syncGroups", array)]),
        ("/sync/bootstrap?type=full&type=partial", vec![("type", type_msg)]),
        ("/sync/deltas?after=abc", vec![("after", after)]),
        ("/sync/deltas?after=-1", vec![("after", after)]),
        ("/sync/deltas?after=", vec![("after", after)]),
        ("/sync/deltas?after=%D9%A1%D9%A2", vec![("after", after)]),
        ("/sync/deltas?after=%EF%BC%91", vec![("after", after)]),
        ("/sync/deltas?after=9223372036854775808", vec![("after", after)]),
        ("/sync/deltas?after=99999999999999999999999999999999999999", vec![("after", after)]),
        ("/sync/deltas?limit=ten&after=x", vec![("after", after), ("limit", limit)]),
        ("/sync/deltas?after=1&after=2", vec![("after", array)]),
    ];
    for (uri, expected) in cases {
        let details: Vec<Value> = expected.iter().map(|(f, m)| json!({"field": f, "message": m})).collect();
        let want = json!({"details": details, "error": "Validation failed", "source": "query"});
        // With and without credentials: validation comes first.
        for user in [None, Some("alice"), Some("nobody")] {
            let r = send(&app, get(uri, user)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(r.header(header::CONTENT_TYPE), Some(JSON_TYPE));
            assert_eq!(without_request_id(r.json()), want, "{uri}");
        }
    }
    // Exact bytes, key order included (a fresh server: the first failure is req-1).
    app.stop().await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;
    let r = send(&app, get("/sync/bootstrap?type=partial", None)).await;
    assert_eq!(
        r.text(),
        r#"{"details":[{"field":"firstSyncId","message":"firstSyncId is required for partial bootstrap"}],"error":"Validation failed","requestId":"req-1","source":"query"}"#
    );
    let r = send(&app, get("/sync/deltas?after=x", None)).await;
    assert_eq!(r.json()["requestId"], json!("req-2"));

    // The largest sync id is valid; a huge limit is clamped, not refused.
    let r = send(&app, get("/sync/bootstrap?type=partial&firstSyncId=9223372036854775807", Some("alice"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.lines(),
        [
            json!({"lastSyncId": "0", "returnedModelsCount": {"Workspace": 1, "Task": 0, "Label": 0, "TaskLabel": 0},
                   "schemaHash": stratasync_core::model::client_schema::ClientSchema::from_registry(&taskboard::registry()).hash(), "subscribedSyncGroups": [a, "alice"]}),
            json!({"__class": "Workspace", "id": a, "name": "Alpha", "createdAt": 1718452800000i64})
        ]
    );
    let r = send(&app, get("/sync/deltas?limit=99999999999999999999999", Some("alice"))).await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, r#"{"actions":[],"hasMore":false,"lastSyncId":"0"}"#));
    assert_eq!(db.fingerprint().await, before);
}

/// 400s of the body endpoints, and the framework-level body errors.
async fn body_failures(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, _) = two_workspaces(&db).await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;
    let before = db.fingerprint().await;

    let detail = |field: &str, message: &str| json!({"field": field, "message": message});
    let good_tx = || transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": "t"}));
    let many_requests: Vec<Value> = (0..101).map(|_| json!({"groupId": a, "modelName": "Task"})).collect();
    let many_txs: Vec<Value> = (0..101).map(|_| good_tx()).collect();
    let cases: Vec<(&str, Value, Vec<Value>)> = vec![
        ("/sync/batch", json!(null), vec![detail("root", "Invalid input: expected object, received null")]),
        ("/sync/batch", json!([1]), vec![detail("root", "Invalid input: expected object, received array")]),
        ("/sync/batch", json!({}), vec![detail("requests", "Invalid input: expected array, received undefined")]),
        ("/sync/batch", json!({"requests": []}), vec![detail("requests", "At least one request is required")]),
        (
            "/sync/batch",
            json!({"requests": many_requests}),
            vec![detail("requests", "At most 100 requests are allowed")],
        ),
        (
            "/sync/batch",
            json!({"firstSyncId": "x", "requests": [{"groupId": "", "modelName": "Task"}, {"modelName": "Task"}]}),
            vec![
                detail("firstSyncId", "firstSyncId must be a numeric string"),
                detail("requests", "Group ID is required"),
                detail("requests", "Invalid input"),
            ],
        ),
        (
            "/sync/batch",
            json!({"firstSyncId": "١٢", "requests": [{"indexedKey": "id", "keyValue": "k", "modelName": ""}]}),
            vec![
                detail("firstSyncId", "firstSyncId must be a numeric string"),
                detail("requests", "Model name is required"),
            ],
        ),
        (
            "/sync/batch",
            json!({"firstSyncId": 42, "requests": [{"groupId": "g", "modelName": "M"}]}),
            vec![detail("firstSyncId", "Invalid input: expected string, received number")],
        ),
        ("/sync/mutate", json!("str"), vec![detail("root", "Invalid input: expected object, received string")]),
        (
            "/sync/mutate",
            json!({}),
            vec![
                detail("batchId", "Invalid input: expected string, received undefined"),
                detail("transactions", "Invalid input: expected array, received undefined"),
            ],
        ),
        (
            "/sync/mutate",
            json!({"batchId": "", "transactions": []}),
            vec![
                detail("batchId", "Batch ID is required"),
                detail("transactions", "At least one transaction is required"),
            ],
        ),
        (
            "/sync/mutate",
            json!({"batchId": "b", "transactions": many_txs}),
            vec![detail("transactions", "At most 100 transactions are allowed")],
        ),
    ];
    for (uri, body, details) in cases {
        let want = json!({"details": details, "error": "Validation failed", "source": "body"});
        for user in [None, Some("alice")] {
            let r = send(&app, post_json(uri, user, &body)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri} {body}");
            assert_eq!(r.header(header::CONTENT_TYPE), Some(JSON_TYPE));
            assert_eq!(without_request_id(r.json()), want, "{uri} {body}");
        }
    }

    for uri in ["/sync/batch", "/sync/mutate"] {
        // No body at all, and a text/plain body: validation failures of `root`.
        let r = send(&app, Req::post().uri(uri)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            without_request_id(r.json()),
            json!({"details": [detail("root", "Invalid input: expected object, received undefined")],
                   "error": "Validation failed", "source": "body"})
        );
        let req = Req::post()
            .uri(uri)
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .insert_header((header::AUTHORIZATION, bearer("alice")))
            .set_payload(r#"{"batchId":"b"}"#);
        let r = send(&app, req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json()["details"], json!([detail("root", "Invalid input: expected object, received string")]));

        // Framework-level errors.
        let framework = |status: u16, code: &str, error: &str, message: &str| json!({"statusCode": status, "code": code, "error": error, "message": message});
        let raw = |ct: Option<&str>, body: Vec<u8>| {
            let mut req = Req::post().uri(uri).insert_header((header::AUTHORIZATION, bearer("alice")));
            if let Some(ct) = ct {
                req = req.insert_header((header::CONTENT_TYPE, ct));
            }
            req.set_payload(body)
        };
        let r = send(&app, raw(Some("application/json"), b"{\"batchId\":".to_vec())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.header(header::CONTENT_TYPE), Some(JSON_TYPE));
        assert_eq!(
            r.text(),
            r#"{"statusCode":400,"code":"FST_ERR_CTP_INVALID_JSON_BODY","error":"Bad Request","message":"Body is not valid JSON but content-type is set to 'application/json'"}"#
        );
        let r = send(&app, raw(Some("application/json; charset=utf-8"), Vec::new())).await;
        assert_eq!(
            (r.status, r.json()),
            (
                StatusCode::BAD_REQUEST,
                framework(
                    400,
                    "FST_ERR_CTP_EMPTY_JSON_BODY",
                    "Bad Request",
                    "Body cannot be empty when content-type is set to 'application/json'"
                )
            )
        );
        let mut big = b"{\"batchId\":\"".to_vec();
        big.resize(1024 * 1024 + 1, b'a');
        let r = send(&app, raw(Some("application/json"), big)).await;
        assert_eq!(
            (r.status, r.json()),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                framework(413, "FST_ERR_CTP_BODY_TOO_LARGE", "Payload Too Large", "Request body is too large")
            )
        );
        let r = send(&app, raw(Some("application/xml"), b"<a/>".to_vec())).await;
        assert_eq!(
            (r.status, r.json()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                framework(
                    415,
                    "FST_ERR_CTP_INVALID_MEDIA_TYPE",
                    "Unsupported Media Type",
                    "Unsupported Media Type: application/xml"
                )
            )
        );
        let r = send(&app, raw(None, b"{}".to_vec())).await;
        assert_eq!(
            (r.status, r.json()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                framework(
                    415,
                    "FST_ERR_CTP_INVALID_MEDIA_TYPE",
                    "Unsupported Media Type",
                    "Unsupported Media Type: undefined"
                )
            )
        );
    }
    assert_eq!(db.fingerprint().await, before);
}

/// docs/protocol.md §10 #19: a validation failure inside one transaction names
/// it, nothing of the batch is applied, and the rest succeeds once it is
/// dropped.
async fn mutate_validation_names_the_transaction(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, _) = two_workspaces(&db).await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;
    let before = db.fingerprint().await;

    let mut txs: Vec<Value> = (0..5)
        .map(|i| transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": format!("t{i}")})))
        .collect();
    txs[3]["clientId"] = json!("");
    let poison = txs[3]["clientTxId"].as_str().unwrap().to_owned();
    let r = send(&app, post_json("/sync/mutate", Some("alice"), &mutate_body(txs.clone()))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        without_request_id(r.json()),
        json!({"clientTxId": poison, "details": [{"field": "transactions", "message": "Client ID is required"}],
               "error": "Validation failed", "source": "body"})
    );
    assert!(r.text().starts_with(&format!(r#"{{"clientTxId":"{poison}","details":"#)), "{}", r.text());
    // Also without credentials: validation still comes first.
    let r = send(&app, post_json("/sync/mutate", None, &mutate_body(txs.clone()))).await;
    assert_eq!((r.status, r.json()["clientTxId"].clone()), (StatusCode::BAD_REQUEST, json!(poison)));

    txs[3]["clientId"] = json!("device-1");
    txs[3]["action"] = json!("UPSERT");
    let r = send(&app, post_json("/sync/mutate", Some("alice"), &mutate_body(txs.clone()))).await;
    assert_eq!(r.json()["clientTxId"], json!(poison));
    assert_eq!(
        r.json()["details"],
        json!([{"field": "transactions",
                "message": r#"Invalid option: expected one of "INSERT"|"UPDATE"|"DELETE"|"ARCHIVE"|"UNARCHIVE""#}])
    );
    txs[3]["action"] = json!("INSERT");
    txs[3]["payload"] = json!(null);
    let r = send(&app, post_json("/sync/mutate", Some("alice"), &mutate_body(txs.clone()))).await;
    assert_eq!(r.json()["clientTxId"], json!(poison));
    assert_eq!(r.json()["details"][0]["message"], json!("Invalid input: expected record, received null"));
    assert_eq!(db.fingerprint().await, before, "a rejected batch applies nothing");

    // The client drops the named transaction and re-sends the rest.
    txs.remove(3);
    let r = send(&app, post_json("/sync/mutate", Some("alice"), &mutate_body(txs))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["success"], json!(true));
    assert_eq!(r.json()["lastSyncId"], json!("4"));

    // A batch-level failure names no transaction.
    let r = send(
        &app,
        post_json(
            "/sync/mutate",
            Some("alice"),
            &json!({"transactions": [transaction("INSERT", "Task", "x", json!({}))]}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json().get("clientTxId").is_none());
}

/// A test auth: `expired` is an expired token, user `broken` makes group
/// resolution fail (with internal details that must not leak).
struct TestAuth;

#[async_trait]
impl SyncAuth for TestAuth {
    async fn verify_token(&self, token: &str) -> Result<AuthUser, AuthRejection> {
        match token {
            "expired" => Err(AuthRejection::Expired),
            t => t.strip_prefix("token-").filter(|u| !u.is_empty()).map(AuthUser::new).ok_or(AuthRejection::Invalid),
        }
    }

    async fn resolve_groups(&self, user_id: &str) -> Result<Vec<String>, GroupResolutionError> {
        if user_id == "broken" {
            Err(GroupResolutionError(Box::new(std::io::Error::other(
                "connection to 10.0.0.7 refused at /work/src/x.rs:1",
            ))))
        } else {
            Ok(Vec::new())
        }
    }
}

async fn auth_failures(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, _) = two_workspaces(&db).await;
    let engine =
        SyncEngine::builder(db.pool.clone(), taskboard::registry(), TestAuth).start().expect("the engine starts");
    let app = TestServer::start_on(adapter, &db, engine).await;
    let before = db.fingerprint().await;

    let insert = mutate_body(vec![transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": "t"}))]);
    let batch = json!({"requests": [{"groupId": a, "modelName": "Task"}]});
    let cases: Vec<(Option<&str>, StatusCode, &str)> = vec![
        (None, StatusCode::UNAUTHORIZED, r#"{"error":"Authorization header required"}"#),
        (Some(""), StatusCode::UNAUTHORIZED, r#"{"error":"Authorization header required"}"#),
        // HTTP/1.1 drops the whitespace around a value: a blank one arrives
        // empty (a blank value itself is an invalid format; core's unit tests).
        (Some("   "), StatusCode::UNAUTHORIZED, r#"{"error":"Authorization header required"}"#),
        (Some("Basic dXNlcjpwYXNz"), StatusCode::UNAUTHORIZED, r#"{"error":"Invalid authorization format"}"#),
        (Some("Bearer a b"), StatusCode::UNAUTHORIZED, r#"{"error":"Invalid authorization format"}"#),
        (Some("Bearer"), StatusCode::UNAUTHORIZED, r#"{"error":"Invalid authorization format"}"#),
        (Some("Bearer nope"), StatusCode::UNAUTHORIZED, r#"{"error":"Invalid token"}"#),
        (Some("Bearer token-"), StatusCode::UNAUTHORIZED, r#"{"error":"Invalid token"}"#),
        (Some("bearer expired"), StatusCode::UNAUTHORIZED, r#"{"error":"Token expired"}"#),
        (
            Some("Bearer token-broken"),
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"Failed to resolve sync groups"}"#,
        ),
    ];
    for (header_value, status, body) in cases {
        let with = |req: Req| match header_value {
            Some(v) => req.insert_header((header::AUTHORIZATION, v)),
            None => req,
        };
        let requests = [
            with(Req::get().uri("/sync/bootstrap")),
            with(Req::get().uri("/sync/deltas?after=0")),
            with(post_json("/sync/batch", None, &batch)),
            with(post_json("/sync/mutate", None, &insert)),
        ];
        for req in requests {
            let r = send(&app, req).await;
            assert_eq!((r.status, r.text().as_str()), (status, body), "{header_value:?}");
            assert_eq!(r.header(header::CONTENT_TYPE), Some(JSON_TYPE));
        }
    }
    // A header that is not UTF-8 is refused, not a crash.
    let req = Req::get()
        .uri("/sync/deltas")
        .insert_header((header::AUTHORIZATION, header::HeaderValue::from_bytes(b"Bearer tok\xff").unwrap()));
    assert_eq!(send(&app, req).await.text(), r#"{"error":"Invalid token"}"#);
    // Whitespace and case are tolerated.
    let r =
        send(&app, Req::get().uri("/sync/deltas").insert_header((header::AUTHORIZATION, "  bEaReR   token-alice  ")))
            .await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, r#"{"actions":[],"hasMore":false,"lastSyncId":"0"}"#));
    assert_eq!(db.fingerprint().await, before);
}

async fn stale_cursor_is_409(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, _) = two_workspaces(&db).await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;
    let insert = mutate_body(vec![transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": "t"}))]);
    assert_eq!(send(&app, post_json("/sync/mutate", Some("alice"), &insert)).await.status, StatusCode::OK);
    let before = db.fingerprint().await;
    let body = r#"{"error":"BOOTSTRAP_REQUIRED","message":"A fresh bootstrap is required before fetching deltas"}"#;
    // A cursor ahead of the log (e.g. after a database restore).
    for uri in ["/sync/deltas?after=1000", "/sync/deltas?after=9223372036854775807"] {
        let r = send(&app, get(uri, Some("alice"))).await;
        assert_eq!((r.status, r.text().as_str()), (StatusCode::CONFLICT, body));
        assert_eq!(r.header(header::CONTENT_TYPE), Some(JSON_TYPE));
    }
    let r = send(&app, get("/sync/deltas?after=1", Some("alice"))).await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, r#"{"actions":[],"hasMore":false,"lastSyncId":"1"}"#));
    assert_eq!(db.fingerprint().await, before);
}

async fn group_isolation_between_users(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, b) = two_workspaces(&db).await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;

    let (task_a, task_b) = (new_id(), new_id());
    let r = send(
        &app,
        post_json(
            "/sync/mutate",
            Some("alice"),
            &mutate_body(vec![transaction("INSERT", "Task", &task_a, json!({"workspaceId": a, "title": "alice's"}))]),
        ),
    )
    .await;
    assert_eq!(r.json()["success"], json!(true));
    let r = send(
        &app,
        post_json(
            "/sync/mutate",
            Some("bob"),
            &mutate_body(vec![transaction("INSERT", "Task", &task_b, json!({"workspaceId": b, "title": "bob's"}))]),
        ),
    )
    .await;
    assert_eq!(r.json()["success"], json!(true));
    let before = db.fingerprint().await;

    // Bootstrap: each sees their own workspace only, even when asking for the other's.
    for (user, mine, theirs, task) in [("alice", &a, &b, &task_a), ("bob", &b, &a, &task_b)] {
        let lines = send(&app, get("/sync/bootstrap", Some(user))).await.lines();
        let ids: Vec<&str> = lines[1..].iter().map(|l| l["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [mine.as_str(), task.as_str()], "{user}");
        assert_eq!(lines[0]["subscribedSyncGroups"], json!([mine, user]));
        let lines = send(&app, get(&format!("/sync/bootstrap?syncGroups={theirs}"), Some(user))).await.lines();
        assert!(lines[1..].iter().all(|l| l["id"] != json!(theirs)), "{user} must not see {theirs}");
        assert!(lines[1..].iter().all(|l| l.get("workspaceId").is_none_or(|w| w == mine)));

        // Deltas: only their own actions, also when asking for the other's group.
        let page = send(&app, get("/sync/deltas?after=0", Some(user))).await.json();
        let models: Vec<&str> =
            page["actions"].as_array().unwrap().iter().map(|x| x["modelId"].as_str().unwrap()).collect();
        assert_eq!(models, [task.as_str()], "{user}");
        let page = send(&app, get(&format!("/sync/deltas?after=0&syncGroups={theirs}"), Some(user))).await.json();
        assert_eq!(page["actions"], json!([]));

        // Batch: the other's group and rows are not served.
        let body = json!({"requests": [{"groupId": theirs, "modelName": "Task"},
                                        {"indexedKey": "workspaceId", "keyValue": theirs, "modelName": "Task"}]});
        let r = send(&app, post_json("/sync/batch", Some(user), &body)).await;
        assert_eq!((r.status, r.body.len()), (StatusCode::OK, 0), "{user}");
    }

    // Mutations into the other's workspace fail and change nothing.
    let r = send(
        &app,
        post_json(
            "/sync/mutate",
            Some("bob"),
            &mutate_body(vec![
                transaction("UPDATE", "Task", &task_a, json!({"title": "hijacked"})),
                transaction("DELETE", "Task", &task_a, json!({})),
                transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": "planted"})),
                transaction("UPDATE", "Workspace", &a, json!({"name": "mine now"})),
            ]),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let results = r.json()["results"].clone();
    assert_eq!(r.json()["success"], json!(false));
    for result in results.as_array().unwrap() {
        assert_eq!(result["success"], json!(false), "{result}");
    }
    assert_eq!(db.fingerprint().await, before);
}

/// A database failure is a retryable 503 (or a last error line in a
/// stream), never the database's text.
async fn storage_failures_are_generic(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, _) = two_workspaces(&db).await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;
    db.execute("DROP TABLE sync_actions").await;

    let r = send(&app, get("/sync/deltas?after=0", Some("alice"))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header(header::RETRY_AFTER), Some("1"));
    assert_eq!(r.header(header::CONTENT_TYPE), Some(JSON_TYPE));
    assert_eq!(r.text(), r#"{"statusCode":503,"error":"Service Unavailable","message":"Storage unavailable"}"#);

    let r = send(&app, get("/sync/bootstrap", Some("alice"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.lines().last().unwrap(), &json!({"message": "Storage unavailable", "type": "error"}));

    let insert = mutate_body(vec![transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": "t"}))]);
    // A mutation whose log write fails is a retryable 503, never a 200
    // (a `success:false` would make the client drop the edit).
    let r = send(&app, post_json("/sync/mutate", Some("alice"), &insert)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.header(header::RETRY_AFTER), Some("1"));
    assert_eq!(r.header(header::CONTENT_TYPE), Some(JSON_TYPE));
    assert_eq!(r.text(), r#"{"statusCode":503,"error":"Service Unavailable","message":"Storage unavailable"}"#);
    assert_eq!(db.scalar("SELECT count(*) FROM tasks").await, 0, "nothing is half-applied");
}

/// Hostile inputs get 4xx answers, and the service keeps working.
async fn hostile_inputs_do_not_break_the_server(adapter: Adapter) {
    let db = TestDb::new().await;
    two_workspaces(&db).await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;
    let before = db.fingerprint().await;

    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let bodies: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        b"{\"batchId\":\"b\",\"transactions\":[{\"action\":\"INSERT\",\"payload\":1e999999}]}".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        b"{\"batchId\":\"\xff\"}".to_vec(),
        format!("{{\"batchId\":\"b\",\"transactions\":[{}]}}", vec!["{}"; 20_000].join(",")).into_bytes(),
        b"{\"requests\":[{\"groupId\":\"\\u0000\",\"modelName\":\"Task\"}],\"firstSyncId\":\"00000000000000000000000000001\"}"
            .to_vec(),
    ];
    let invalid_json = json!({"statusCode": 400, "code": "FST_ERR_CTP_INVALID_JSON_BODY", "error": "Bad Request",
                              "message": "Body is not valid JSON but content-type is set to 'application/json'"});
    let validation = |details: Value| json!({"details": details, "error": "Validation failed", "source": "body"});
    let detail = |field: &str, message: &str| json!({"field": field, "message": message});
    for uri in ["/sync/batch", "/sync/mutate"] {
        let mut answers = Vec::new();
        for body in &bodies {
            let req = Req::post()
                .uri(uri)
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .insert_header((header::AUTHORIZATION, bearer("alice")))
                .set_payload(body.clone());
            answers.push(send(&app, req).await);
        }
        // Too deep, a number out of range, not UTF-8: not JSON.
        for r in &answers[..4] {
            assert_eq!((r.status, r.json()), (StatusCode::BAD_REQUEST, invalid_json.clone()), "{uri}");
        }
        let (many, odd) = (&answers[4], &answers[5]);
        assert_eq!(many.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(odd.status, if uri == "/sync/batch" { StatusCode::OK } else { StatusCode::BAD_REQUEST });
        if uri == "/sync/batch" {
            let want = validation(json!([detail("requests", "Invalid input: expected array, received undefined")]));
            assert_eq!(without_request_id(many.json()), want);
            // A group id nobody has: an empty answer.
            assert_eq!(odd.text(), "");
        } else {
            // 20,000 empty transactions: the first 101 are examined (six
            // issues each), so the answer stays small.
            let body = without_request_id(many.json());
            assert_eq!((body["error"].clone(), body["source"].clone()), (json!("Validation failed"), json!("body")));
            let messages = [
                r#"Invalid option: expected one of "INSERT"|"UPDATE"|"DELETE"|"ARCHIVE"|"UNARCHIVE""#,
                "Invalid input: expected string, received undefined",
                "Invalid input: expected record, received undefined",
            ];
            let details = body["details"].as_array().unwrap();
            assert_eq!(details.len(), 101 * 6);
            assert!(details.iter().all(|d| d["field"] == json!("transactions")
                && messages.contains(&d["message"].as_str().unwrap_or_default())));
            let want = validation(json!([
                detail("batchId", "Invalid input: expected string, received undefined"),
                detail("transactions", "Invalid input: expected array, received undefined")
            ]));
            assert_eq!(without_request_id(odd.json()), want);
        }
    }
    let long = format!("/sync/deltas?after={}&syncGroups={}", "9".repeat(10_000), "%FF,".repeat(2_000));
    let r = send(&app, get(&long, Some("alice"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        without_request_id(r.json()),
        json!({"details": [{"field": "after", "message": "After must be a numeric string"},
                           {"field": "syncGroups", "message": "At most 1000 groups are allowed"}],
               "error": "Validation failed", "source": "query"})
    );
    // Undecodable names are names nobody has: no rows, no groups.
    let odd = "/sync/bootstrap?type=full&onlyModels=%ZZ%2C%00,%E2%82&syncGroups=%00&schemaHash=%F0%9F%92%A9&=x&&";
    let r = send(&app, get(odd, Some("alice"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.lines(),
        [json!({"lastSyncId": "0", "returnedModelsCount": {"%ZZ": 0, "\u{0}": 0, "\u{fffd}": 0},
                "schemaHash": stratasync_core::model::client_schema::ClientSchema::from_registry(&taskboard::registry()).hash(), "subscribedSyncGroups": []})]
    );
    // Still serving.
    let r = send(&app, get("/sync/deltas", Some("alice"))).await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, r#"{"actions":[],"hasMore":false,"lastSyncId":"0"}"#));
    assert_eq!(db.fingerprint().await, before);
}

/// A method a sync route does not take is answered as an unknown path
/// would be (404, empty, no `Allow`), on both adapters; so is `HEAD` (the
/// endpoints are `GET` and `POST` only).
async fn other_methods_are_not_found(adapter: Adapter) {
    let db = TestDb::new().await;
    let app = TestServer::start_on(adapter, &db, db.engine()).await;
    let before = db.fingerprint().await;
    let cases = [
        (Method::POST, "/sync/bootstrap"),
        (Method::HEAD, "/sync/bootstrap"),
        (Method::PUT, "/sync/deltas?after=0"),
        (Method::HEAD, "/sync/deltas"),
        (Method::GET, "/sync/batch"),
        (Method::GET, "/sync/mutate"),
        (Method::DELETE, "/sync/mutate"),
        (Method::POST, "/sync/ws?token=token-alice"),
        (Method::HEAD, "/sync/ws?token=token-alice"),
        (Method::OPTIONS, "/sync/ws"),
        (Method::PATCH, "/sync/nothing"),
    ];
    for (method, uri) in cases {
        let req = Req { method: method.clone(), ..Req::get().uri(uri) }
            .insert_header((header::AUTHORIZATION, bearer("alice")));
        let r = send(&app, req).await;
        assert_eq!((r.status, r.text().as_str()), (StatusCode::NOT_FOUND, ""), "{method} {uri}");
        assert_eq!(r.header(header::ALLOW), None, "{method} {uri}");
        assert_eq!(r.header(header::CONTENT_TYPE), None, "{method} {uri}");
    }
    assert_eq!(db.fingerprint().await, before);
}

on_both_adapters!(
    bootstrap_mutate_deltas_and_batch_round_trip,
    query_validation_failures,
    body_failures,
    mutate_validation_names_the_transaction,
    auth_failures,
    stale_cursor_is_409,
    group_isolation_between_users,
    storage_failures_are_generic,
    hostile_inputs_do_not_break_the_server,
    other_methods_are_not_found,
);
