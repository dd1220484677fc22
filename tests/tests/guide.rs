//! `docs/guide.md`: its JWT authentication is the file
//! `tests/guide/jwt_auth.rs` word for word, and that code accepts and
//! refuses real tokens (signed here with `jsonwebtoken`), also through the
//! engine's group resolution against PostgreSQL.

#[path = "../guide/jwt_auth.rs"]
mod jwt_auth;

use jsonwebtoken::{encode, EncodingKey, Header};
use jwt_auth::JwtAuth;
use serde_json::json;
use std::path::Path;
use stratasync_core::{AuthRejection, SyncAuth, SyncEngine};
use stratasync_tests::TestDb;

const SECRET: &[u8] = b"a test secret of reasonable length";

fn token(secret: &[u8], claims: serde_json::Value) -> String {
    encode(&Header::default(), &claims, &EncodingKey::from_secret(secret)).expect("sign")
}

fn in_an_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

#[test]
fn the_guide_shows_the_tested_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("../docs/guide.md")).expect("docs/guide.md");
    let file = std::fs::read_to_string(root.join("guide/jwt_auth.rs")).expect("tests/guide/jwt_auth.rs");
    let block = format!("```rust\n{file}```\n");
    assert!(guide.contains(&block), "docs/guide.md must show tests/guide/jwt_auth.rs exactly, as a ```rust block");
}

#[tokio::test]
async fn jwt_tokens_are_verified() {
    let auth = JwtAuth::new(SECRET, "sync");
    let good = token(SECRET, json!({"sub": "alice", "aud": "sync", "exp": in_an_hour(), "email": "a@example.com"}));
    let user = auth.verify_token(&good).await.expect("a valid token");
    assert_eq!((user.user_id.as_str(), user.email.as_deref()), ("alice", Some("a@example.com")));

    let forged = token(b"another secret", json!({"sub": "alice", "aud": "sync", "exp": in_an_hour()}));
    assert_eq!(auth.verify_token(&forged).await, Err(AuthRejection::Invalid));
    let expired = token(SECRET, json!({"sub": "alice", "aud": "sync", "exp": chrono::Utc::now().timestamp() - 3600}));
    assert_eq!(auth.verify_token(&expired).await, Err(AuthRejection::Expired));
    let elsewhere = token(SECRET, json!({"sub": "alice", "aud": "billing", "exp": in_an_hour()}));
    assert_eq!(auth.verify_token(&elsewhere).await, Err(AuthRejection::Invalid));
    let no_exp = token(SECRET, json!({"sub": "alice", "aud": "sync"}));
    assert_eq!(auth.verify_token(&no_exp).await, Err(AuthRejection::Invalid));
    let nobody = token(SECRET, json!({"sub": "", "aud": "sync", "exp": in_an_hour()}));
    assert_eq!(auth.verify_token(&nobody).await, Err(AuthRejection::Invalid));
    assert_eq!(auth.verify_token("not a token").await, Err(AuthRejection::Invalid));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jwt_user_gets_their_memberships() {
    let db = TestDb::new().await;
    let engine = SyncEngine::builder(db.pool.clone(), taskboard::registry(), JwtAuth::new(SECRET, "sync"))
        .start()
        .expect("the engine starts");
    let ws = stratasync_tests::ws_support::workspace(&db, &["alice"]).await;
    let good = token(SECRET, json!({"sub": "alice", "aud": "sync", "exp": in_an_hour()}));
    let context = engine.authorize(&good).await.expect("authorized");
    assert_eq!(context.groups, [ws, "alice".to_owned()]);
}
