//! The protobuf codec of `roomguard.v1`: prost's, except that a request that does not decode is the caller's bug
//! (`INVALID_ARGUMENT`), not roomguard's (`INTERNAL`, which is what `tonic-prost` answers for every decode error).
//!
//! A caller must be able to tell the two apart: an invalid argument is never worth a retry, an internal error may be.
//! Invalid UTF-8 in a string field, a wrong wire type, a length that overruns the message, an over-long varint or
//! nesting deeper than prost's recursion limit all end here. prost's message names the field path
//! (`CheckMessageSendRequest.sender: Subject.user_id: invalid string value: data is not UTF-8 encoded`), and it never
//! quotes the bytes it could not read, so the answer echoes no message content.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstEncoder};

/// prost's codec with decode errors answered `INVALID_ARGUMENT` (named in `build.rs` as the generated code's codec).
#[derive(Debug, Clone, Copy)]
pub struct RequestCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for RequestCodec<T, U> {
    fn default() -> Self {
        RequestCodec(PhantomData)
    }
}

impl<T, U> Codec for RequestCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(PhantomData)
    }
}

/// Decodes a `U`, answering `INVALID_ARGUMENT` when the bytes are not one.
#[derive(Debug, Clone, Copy)]
pub struct RequestDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|err| {
            Status::invalid_argument(format!(
                "the request is not a valid protobuf message: {err}"
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
