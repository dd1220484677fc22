//! `GET ws`: the handshake, then the core's [`SocketSession`] over the
//! connection. Frames out are the session's, encoded by actix-http's
//! codec ([`crate::ws_body`]); frames in are decoded into
//! [`Inbound`](stratasync_core::realtime::Inbound) events
//! ([`crate::ws_incoming`]).

use crate::reply::{parts, response};
use crate::ws_body::OutboxBody;
use crate::ws_incoming::Incoming;
use actix_web::body::MessageBody;
use actix_web::{web, HttpRequest, HttpResponse};
use stratasync_core::endpoint::SyncEndpoints;

/// The upgrade: the endpoint's checks, the handshake, then the session's
/// task.
pub(crate) async fn upgrade(
    endpoints: &SyncEndpoints,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let session = match endpoints.open_socket(&parts(&req)).await {
        Ok(session) => session,
        Err(reply) => return Ok(response(reply)),
    };
    let mut handshake = match actix_http::ws::handshake(req.head()) {
        Ok(handshake) => handshake,
        // The core checked the handshake headers; actix-http's answer is
        // left for what only it checks (the request method).
        Err(e) => return Ok(HttpResponse::from(actix_http::Response::from(e))),
    };
    let frames = OutboxBody::new(session.frames(crate::ws_body::Encoder));
    let handshake = handshake.message_body(MessageBody::boxed(frames))?;
    let incoming = Incoming::new(body.into_inner(), session.max_message_bytes());
    actix_web::rt::spawn(session.run(incoming));
    Ok(handshake.into())
}
