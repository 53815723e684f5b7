//! The first versions of `send_join`, `send_leave` and `invite`, which
//! older servers still call: the same work as v2, answered in v1's shape, a
//! JSON array `[200, body]`. ruma no longer has their types (and its
//! macros cannot be used outside ruma): they are declared here.

use std::sync::Arc;

use axum::Router;
use bytes::BufMut;
use ruma::api::error::{
    DeserializationError, Error as MatrixError, FromHttpRequestError, IntoHttpError,
};
use ruma::api::federation::authentication::ServerSignatures;
use ruma::api::federation::membership::create_join_event::v2::RoomState;
use ruma::api::path_builder::SinglePath;
use ruma::api::{IncomingRequest, Metadata, OutgoingResponse};
use ruma::{OwnedEventId, OwnedRoomId, RoomVersionId};
use serde::{Serialize, Serializer};

use super::invites::{stripped_forms_of_values, take_invite, Invite};
use super::membership::{join_answer, leave_taken};
use crate::error::Result;
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;
use serde_json::value::RawValue as RawJsonValue;

pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .endpoint(join)
        .endpoint(leave)
        .endpoint(invite)
}

/// A v1 answer: `[200, body]`.
#[derive(Debug, Clone)]
pub struct V1<T>(pub T);

impl<T: Serialize> Serialize for V1<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        (200u16, &self.0).serialize(serializer)
    }
}

/// A v1 membership request: the room and event in the path, the PDU as
/// the body.
#[derive(Debug)]
pub struct MembershipPut {
    pub room_id: OwnedRoomId,
    pub event_id: OwnedEventId,
    pub pdu: Box<RawJsonValue>,
}

impl MembershipPut {
    fn parse<B: AsRef<[u8]>, S: AsRef<str>>(
        request: http::Request<B>,
        path_args: &[S],
    ) -> std::result::Result<Self, FromHttpRequestError> {
        let arg = |i: usize| path_args.get(i).map(|a| a.as_ref()).unwrap_or_default();
        let bad = |e: ruma::IdParseError| {
            FromHttpRequestError::Deserialization(DeserializationError::Ident(e))
        };
        let room_id = OwnedRoomId::try_from(arg(0)).map_err(bad)?;
        let event_id = OwnedEventId::try_from(arg(1)).map_err(bad)?;
        let pdu = serde_json::from_slice(request.body().as_ref())
            .map_err(|e| FromHttpRequestError::Deserialization(DeserializationError::Json(e)))?;
        Ok(Self {
            room_id,
            event_id,
            pdu,
        })
    }
}

/// A v1 answer as an HTTP response.
pub struct V1Response<T>(V1<T>);

impl<T: Serialize> OutgoingResponse for V1Response<T> {
    fn try_into_http_response<B: Default + BufMut>(
        self,
    ) -> std::result::Result<http::Response<B>, IntoHttpError> {
        let mut body = B::default();
        body.put_slice(&serde_json::to_vec(&self.0)?);
        Ok(http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)?)
    }
}

/// Declares a v1 membership endpoint at `path`, answering `T`.
macro_rules! v1_membership_endpoint {
    ($name:ident, $path:literal, $answer:ty) => {
        pub struct $name(pub MembershipPut);

        impl Metadata for $name {
            const METHOD: http::Method = http::Method::PUT;
            const RATE_LIMITED: bool = false;
            type Authentication = ServerSignatures;
            type PathBuilder = SinglePath;
            const PATH_BUILDER: SinglePath = SinglePath::new($path);
        }

        impl IncomingRequest for $name {
            type EndpointError = MatrixError;
            type OutgoingResponse = V1Response<$answer>;

            fn try_from_http_request<B: AsRef<[u8]>, S: AsRef<str>>(
                request: http::Request<B>,
                path_args: &[S],
            ) -> std::result::Result<Self, FromHttpRequestError> {
                Self::check_request_method(request.method())?;
                MembershipPut::parse(request, path_args).map(Self)
            }
        }
    };
}

v1_membership_endpoint!(
    SendJoinV1,
    "/_matrix/federation/v1/send_join/{room_id}/{event_id}",
    RoomState
);
v1_membership_endpoint!(
    InviteV1,
    "/_matrix/federation/v1/invite/{room_id}/{event_id}",
    InviteAnswer
);
v1_membership_endpoint!(
    SendLeaveV1,
    "/_matrix/federation/v1/send_leave/{room_id}/{event_id}",
    Empty
);

/// The invite countersigned.
#[derive(Debug, Serialize)]
pub struct InviteAnswer {
    pub event: Box<RawJsonValue>,
}

/// v1's empty answer body.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Empty {}

async fn join(s: Arc<Services>, req: Ruma<SendJoinV1>) -> Result<V1Response<RoomState>> {
    let Ruma { body, caller, .. } = req;
    let MembershipPut {
        room_id,
        event_id,
        pdu,
    } = body.0;
    let answer = join_answer(s, &caller.0, &room_id, &event_id, &pdu).await?;
    Ok(V1Response(V1(answer)))
}

async fn leave(s: Arc<Services>, req: Ruma<SendLeaveV1>) -> Result<V1Response<Empty>> {
    let Ruma { body, caller, .. } = req;
    let put = body.0;
    leave_taken(&s, &caller.0, &put.room_id, &put.event_id, &put.pdu).await?;
    Ok(V1Response(V1(Empty {})))
}

/// `invite` v1 names no room version: as Synapse does, the room is taken
/// to be of version 1 (v1 and v2 differ only in state resolution, which
/// an invite does not use). Its stripped state comes in the event's
/// `unsigned.invite_room_state`.
async fn invite(s: Arc<Services>, req: Ruma<InviteV1>) -> Result<V1Response<InviteAnswer>> {
    let Ruma { body, caller, .. } = req;
    let put = body.0;
    let given: serde_json::Value = serde_json::from_str(put.pdu.get())?;
    let stripped = given["unsigned"]["invite_room_state"]
        .as_array()
        .map(|state| stripped_forms_of_values(state))
        .unwrap_or_default();
    let invite = Invite {
        room_id: &put.room_id,
        event_id: &put.event_id,
        version: RoomVersionId::V1,
        event: &put.pdu,
        stripped,
    };
    let event = take_invite(s, caller.0, invite).await?;
    Ok(V1Response(V1(InviteAnswer { event })))
}
