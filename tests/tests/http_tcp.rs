//! The example server over a real TCP port (`awc` as the client): every
//! endpoint, the wire headers, and the documented errors.

use actix_web::http::{header, StatusCode};
use async_trait::async_trait;
use awc::ClientResponse;
use serde_json::{json, Value};
use stratasync_core::auth::{AuthRejection, AuthUser, GroupResolutionError, SyncAuth};
use stratasync_core::SyncEngine;
use stratasync_tests::http_support::*;
use stratasync_tests::*;

const JSON_TYPE: &str = "application/json; charset=utf-8";

/// Status, headers and the whole body of a response.
async fn read<S>(mut res: ClientResponse<S>) -> (StatusCode, header::HeaderMap, Vec<u8>)
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.body().limit(64 * 1024 * 1024).await.expect("body").to_vec();
    assert_no_internals(&body);
    (status, headers, body)
}

fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).expect("UTF-8 body")
}

async fn every_endpoint_over_tcp(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, b) = two_workspaces(&db).await;
    let server = TestServer::start_on(adapter, &db, db.engine()).await;
    let client = client();

    let (status, headers, body) = read(client.get(server.url("/health")).send().await.unwrap()).await;
    assert_eq!((status, text(&body)), (StatusCode::OK, r#"{"status":"ok"}"#));
    assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), JSON_TYPE);

    // Mutate: insert a task, then update it.
    let task = new_id();
    let insert = transaction("INSERT", "Task", &task, json!({"workspaceId": a, "title": "over tcp", "priority": 2}));
    let res = client.post(server.url("/sync/mutate")).insert_header((header::AUTHORIZATION, bearer("alice")));
    let (status, headers, body) = read(res.send_json(&mutate_body(vec![insert.clone()])).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", text(&body));
    assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), JSON_TYPE);
    assert_eq!(
        text(&body),
        format!(
            r#"{{"lastSyncId":"1","results":[{{"clientTxId":"{}","success":true,"syncId":"1"}}],"success":true}}"#,
            insert["clientTxId"].as_str().unwrap()
        )
    );
    let update = transaction("UPDATE", "Task", &task, json!({"title": "renamed"}));
    let res = client.post(server.url("/sync/mutate")).insert_header((header::AUTHORIZATION, bearer("alice")));
    let (_, _, body) = read(res.send_json(&mutate_body(vec![update])).await.unwrap()).await;
    assert_eq!(json_of(&body)["lastSyncId"], json!("2"));

    // Bootstrap: chunked NDJSON.
    let res = client
        .get(server.url("/sync/bootstrap?type=full&onlyModels=Workspace%2CTask&schemaHash=h"))
        .insert_header((header::AUTHORIZATION, bearer("alice")))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(res).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/x-ndjson");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-cache");
    assert_eq!(headers.get(header::TRANSFER_ENCODING).map(|v| v.to_str().unwrap()), Some("chunked"));
    assert!(headers.get(header::CONTENT_LENGTH).is_none());
    let lines = lines_of(&body);
    assert_eq!(
        lines[0],
        json!({"lastSyncId": "2", "returnedModelsCount": {"Workspace": 1, "Task": 1}, "schemaHash": stratasync_core::model::client_schema::ClientSchema::from_registry(&taskboard::registry()).hash(),
               "subscribedSyncGroups": [a, "alice"]})
    );
    assert_eq!(lines[1]["id"], json!(a));
    assert_eq!((lines[2]["id"].clone(), lines[2]["title"].clone()), (json!(task), json!("renamed")));
    assert_eq!(lines.len(), 3);

    // Deltas.
    let res = client
        .get(server.url("/sync/deltas?after=0&useCFCaching=1"))
        .insert_header((header::AUTHORIZATION, bearer("alice")))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(res).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), JSON_TYPE);
    let page = json_of(&body);
    let letters: Vec<&str> =
        page["actions"].as_array().unwrap().iter().map(|x| x["action"].as_str().unwrap()).collect();
    assert_eq!(letters, ["I", "U"]);
    assert_eq!((page["hasMore"].clone(), page["lastSyncId"].clone()), (json!(false), json!("2")));
    assert_eq!(page["actions"][1]["data"], json!({"title": "renamed"}));

    // Batch.
    let res = client.post(server.url("/sync/batch")).insert_header((header::AUTHORIZATION, bearer("alice")));
    let body = json!({"firstSyncId": "2", "requests": [{"indexedKey": "id", "keyValue": task, "modelName": "Task"},
                                                        {"groupId": b, "modelName": "Task"}]});
    let (status, headers, body) = read(res.send_json(&body).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::TRANSFER_ENCODING).map(|v| v.to_str().unwrap()), Some("chunked"));
    let lines = lines_of(&body);
    assert_eq!(lines.len(), 1, "bob's workspace is not alice's");
    assert_eq!(lines[0]["id"], json!(task));

    // Group isolation: bob sees none of it.
    let res = client.get(server.url("/sync/deltas")).insert_header((header::AUTHORIZATION, bearer("bob"))).send();
    let (_, _, body) = read(res.await.unwrap()).await;
    assert_eq!(json_of(&body), json!({"actions": [], "hasMore": false, "lastSyncId": "0"}));
    let res = client.get(server.url("/sync/bootstrap")).insert_header((header::AUTHORIZATION, bearer("bob"))).send();
    let (_, _, body) = read(res.await.unwrap()).await;
    let lines = lines_of(&body);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["id"], json!(b));

    server.stop().await;
}

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
        match user_id {
            "broken" => Err(GroupResolutionError(Box::new(std::io::Error::other("db at 10.0.0.7 refused")))),
            _ => Ok(Vec::new()),
        }
    }
}

async fn documented_errors_over_tcp(adapter: Adapter) {
    let db = TestDb::new().await;
    let (a, _) = two_workspaces(&db).await;
    let engine =
        SyncEngine::builder(db.pool.clone(), taskboard::registry(), TestAuth).start().expect("the engine starts");
    let server = TestServer::start_on(adapter, &db, engine).await;
    let client = client();
    let before = db.fingerprint().await;

    let get = |path: &str, auth: Option<&str>| {
        let req = client.get(server.url(path));
        match auth {
            Some(v) => req.insert_header((header::AUTHORIZATION, v.to_owned())),
            None => req,
        }
    };

    // 400: query validation, before auth; non-ASCII digits and overflow too.
    for (path, field, message) in [
        ("/sync/bootstrap?type=nope", "type", r#"Invalid option: expected one of "full"|"partial""#),
        ("/sync/bootstrap?type=partial", "firstSyncId", "firstSyncId is required for partial bootstrap"),
        ("/sync/bootstrap?firstSyncId=%D9%A1", "firstSyncId", "firstSyncId must be a numeric string"),
        ("/sync/deltas?after=%EF%BC%91%EF%BC%92", "after", "After must be a numeric string"),
        ("/sync/deltas?after=9223372036854775808", "after", "After must be a numeric string"),
        ("/sync/deltas?after=18446744073709551616", "after", "After must be a numeric string"),
        ("/sync/deltas?limit=1.5", "limit", "Limit must be a numeric string"),
        ("/sync/deltas?syncGroups=a&syncGroups=b", "syncGroups", "Invalid input: expected string, received array"),
    ] {
        let (status, headers, body) = read(get(path, None).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), JSON_TYPE);
        assert_eq!(
            without_request_id(json_of(&body)),
            json!({"details": [{"field": field, "message": message}], "error": "Validation failed", "source": "query"}),
            "{path}"
        );
    }

    // 401 and 500 from auth.
    for (auth, status, expected) in [
        (None, 401, r#"{"error":"Authorization header required"}"#),
        (Some("Token abc"), 401, r#"{"error":"Invalid authorization format"}"#),
        (Some("Bearer a b"), 401, r#"{"error":"Invalid authorization format"}"#),
        (Some("Bearer wrong"), 401, r#"{"error":"Invalid token"}"#),
        (Some("Bearer expired"), 401, r#"{"error":"Token expired"}"#),
        (Some("Bearer token-broken"), 500, r#"{"error":"Failed to resolve sync groups"}"#),
    ] {
        for path in ["/sync/bootstrap", "/sync/deltas"] {
            let (got, headers, body) = read(get(path, auth).send().await.unwrap()).await;
            assert_eq!((got.as_u16(), text(&body)), (status, expected), "{path} {auth:?}");
            assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), JSON_TYPE);
        }
        let mut req = client.post(server.url("/sync/mutate"));
        if let Some(v) = auth {
            req = req.insert_header((header::AUTHORIZATION, v.to_owned()));
        }
        let tx = transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": "t"}));
        let (got, _, body) = read(req.send_json(&mutate_body(vec![tx])).await.unwrap()).await;
        assert_eq!((got.as_u16(), text(&body)), (status, expected));
    }

    // 409.
    let (status, _, body) = read(get("/sync/deltas?after=77", Some("Bearer token-alice")).send().await.unwrap()).await;
    assert_eq!(
        (status, text(&body)),
        (
            StatusCode::CONFLICT,
            r#"{"error":"BOOTSTRAP_REQUIRED","message":"A fresh bootstrap is required before fetching deltas"}"#
        )
    );

    // Body errors: 400 invalid/empty JSON, 413, 415, and 400 validation.
    let post = |path: &str, content_type: Option<&str>| {
        let mut req = client.post(server.url(path)).insert_header((header::AUTHORIZATION, "Bearer token-alice"));
        if let Some(ct) = content_type {
            req = req.insert_header((header::CONTENT_TYPE, ct.to_owned()));
        }
        req
    };
    for path in ["/sync/batch", "/sync/mutate"] {
        let (status, _, body) = read(post(path, Some("application/json")).send_body("{nope").await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json_of(&body)["code"], json!("FST_ERR_CTP_INVALID_JSON_BODY"));
        let (status, _, body) = read(post(path, Some("application/json")).send_body("").await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json_of(&body)["code"], json!("FST_ERR_CTP_EMPTY_JSON_BODY"));
        let (status, _, body) =
            read(post(path, Some("application/x-www-form-urlencoded")).send_body("a=1").await.unwrap()).await;
        assert_eq!(
            (status, text(&body)),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                r#"{"statusCode":415,"code":"FST_ERR_CTP_INVALID_MEDIA_TYPE","error":"Unsupported Media Type","message":"Unsupported Media Type: application/x-www-form-urlencoded"}"#
            )
        );
        let big = format!("{{\"batchId\":\"{}\"}}", "x".repeat(1024 * 1024));
        let (status, _, body) = read(post(path, Some("application/json")).send_body(big).await.unwrap()).await;
        assert_eq!(
            (status, text(&body)),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                r#"{"statusCode":413,"code":"FST_ERR_CTP_BODY_TOO_LARGE","error":"Payload Too Large","message":"Request body is too large"}"#
            )
        );
        // Chunked, with no declared length: refused once it passes 1 MiB.
        let chunks = (0..24).map(|_| Ok::<_, std::io::Error>(actix_web::web::Bytes::from(vec![b' '; 64 * 1024])));
        let res = post(path, Some("application/json")).send_stream(futures_util::stream::iter(chunks)).await;
        let (status, _, body) = read(res.unwrap()).await;
        assert_eq!(
            (status, json_of(&body)["code"].clone()),
            (StatusCode::PAYLOAD_TOO_LARGE, json!("FST_ERR_CTP_BODY_TOO_LARGE"))
        );
        let (status, _, body) = read(post(path, None).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            json_of(&body)["details"],
            json!([{"field": "root", "message": "Invalid input: expected object, received undefined"}])
        );
    }
    let mut txs: Vec<Value> =
        (0..3).map(|_| transaction("INSERT", "Task", &new_id(), json!({"workspaceId": a, "title": "t"}))).collect();
    txs[1]["modelName"] = json!("");
    let poison = txs[1]["clientTxId"].clone();
    let (status, _, body) = read(post("/sync/mutate", None).send_json(&mutate_body(txs)).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        without_request_id(json_of(&body)),
        json!({"clientTxId": poison, "details": [{"field": "transactions", "message": "Model name is required"}],
               "error": "Validation failed", "source": "body"})
    );
    let (status, _, body) =
        read(post("/sync/batch", None).send_json(&json!({"firstSyncId": "１", "requests": []})).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json_of(&body)["details"],
        json!([{"field": "firstSyncId", "message": "firstSyncId must be a numeric string"},
               {"field": "requests", "message": "At least one request is required"}])
    );

    assert_eq!(db.fingerprint().await, before, "no rejected request changed the database");
    // The server is still healthy after all of it.
    let (status, _, body) = read(client.get(server.url("/health")).send().await.unwrap()).await;
    assert_eq!((status, text(&body)), (StatusCode::OK, r#"{"status":"ok"}"#));
    server.stop().await;
}

on_both_adapters!(every_endpoint_over_tcp, documented_errors_over_tcp);
