//! The attributes of the rooms reads name (public or not, encrypted...), read from the homeserver's admin API and
//! remembered for `reads.room_cache_s`: a reader paging through a room asks the homeserver once, not once a page.
//! A room the homeserver does not know is remembered as such; a homeserver that does not answer is not remembered.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;

use super::homeserver::{Homeserver, HomeserverError};
use crate::domain::room::Room;

/// Rooms remembered at most.
const MAX_ROOMS: u64 = 100_000;

/// The room cache of one process.
#[derive(Clone)]
pub struct RoomCache {
    cache: Cache<String, Option<Room>>,
    homeserver: Homeserver,
}

impl std::fmt::Debug for RoomCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomCache")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl RoomCache {
    /// A cache remembering each room `ttl`, reading with `homeserver` (which must have the admin token).
    pub fn new(homeserver: Homeserver, ttl: Duration) -> Self {
        RoomCache {
            cache: Cache::builder()
                .max_capacity(MAX_ROOMS)
                .time_to_live(ttl)
                .build(),
            homeserver,
        }
    }

    /// The room's attributes, `None` when the homeserver does not know the room.
    pub async fn room(&self, room_id: &str) -> Result<Option<Room>, Arc<HomeserverError>> {
        let homeserver = &self.homeserver;
        self.cache
            .try_get_with_by_ref(room_id, async move { homeserver.room(room_id).await })
            .await
    }
}
