//! The application side of ratchet's expand/contract migrations.
//!
//! While a migration is expanded, two versions of the schema work side by side: the
//! previous one and the new *version schema* of views (`public_02_status`). An
//! application built for one of them:
//!
//! 1. selects it for its sessions ([`Versioned`]: `search_path = <version schema>,
//!    <schema>`, in the startup packet with [`Versioned::configure`] or per transaction
//!    with [`Versioned::transaction`], which survives PgBouncer's transaction pooling),
//!    and checks once that it took effect ([`Versioned::verify`]);
//! 2. reads feature flags ([`Flags`]): each flag's setting is read through the state
//!    schema's `flag_setting()` and cached for a second, and the answer for a key is
//!    computed here with the same stable hash as SQL's `flag()` ([`FlagSetting::answer`],
//!    [`bucket`]);
//! 3. sends a heartbeat ([`Versioned::heartbeat`]): a background task records the
//!    application, its instance and its version in the state schema's `clients` every 30
//!    s, which `ratchet clients` lists and `ratchet complete` waits on.
//!
//! tokio-postgres is the default; the `sqlx` feature adds the same over an
//! `sqlx::PgPool` (the `sqlx` module). An application in another language does the same with
//! `ratchet url --version X` and two SQL statements; `docs/clients.md` of the ratchet
//! repository walks through all of it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ratchet_client::Versioned;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let v = Versioned::builder("billing")
//!     .version_schema("public_02_status") // or env!("RATCHET_VERSION_SCHEMA")
//!     .from_env()
//!     .build()?;
//! let mut config: tokio_postgres::Config = "postgres://app@db/shop".parse()?;
//! v.configure(&mut config);
//! let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
//! tokio::spawn(conn);
//! v.verify(&client).await?;
//! let client = Arc::new(client);
//! let _heartbeat = v.heartbeat(client.clone()); // stops when dropped
//! let flags = v.flags(client.clone());
//! if flags.flag("02_status.read_new", Some("customer-42")).await? {
//!     // the new read path
//! }
//! # Ok(()) }
//! ```

use serde::Serialize;

mod error;
pub mod flags;
pub mod heartbeat;
#[cfg(feature = "sqlx")]
pub mod sqlx;
pub mod version;

pub use error::Error;
pub use flags::{read_setting, FlagCache, Flags, SettingSource};
pub use heartbeat::Heartbeat;
pub use version::{Versioned, VersionedBuilder};

/// What a flag answers: off, on, or on for a stable share of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "percent", rename_all = "lowercase")]
pub enum FlagSetting {
    Off,
    On,
    /// On for `n` % of keys (0–100), by a stable hash of the flag's name and the key:
    /// the same key always gets the same answer, and raising `n` keeps every key that
    /// was on still on.
    Percent(u8),
}

impl FlagSetting {
    /// `on`, `off`, `30` or `30%`.
    pub fn parse(s: &str) -> Result<FlagSetting, String> {
        let t = s.trim();
        match t {
            "on" | "true" => return Ok(FlagSetting::On),
            "off" | "false" => return Ok(FlagSetting::Off),
            _ => {}
        }
        let n = t.strip_suffix('%').unwrap_or(t);
        match n.parse::<u8>() {
            Ok(0) => Ok(FlagSetting::Off),
            Ok(100) => Ok(FlagSetting::On),
            Ok(p) if p < 100 => Ok(FlagSetting::Percent(p)),
            _ => Err(format!(
                "`{s}` is not a flag setting: use on, off or a percentage from 0 to 100 (e.g. 10%)"
            )),
        }
    }

    /// The `state` and `percent` columns of the state schema's `flags` table (what
    /// `flag_setting()` returns) for this setting, e.g. `("percent", 30)`.
    pub fn columns(self) -> (&'static str, i32) {
        let state = match self {
            FlagSetting::Off => "off",
            FlagSetting::On => "on",
            FlagSetting::Percent(_) => "percent",
        };
        (state, self.percent() as i32)
    }

    /// The setting those columns hold; a state this crate does not know is off, as
    /// `flag()` answers it.
    pub fn from_columns(state: &str, percent: i32) -> FlagSetting {
        match state {
            "on" => FlagSetting::On,
            "percent" => FlagSetting::Percent(percent.clamp(0, 100) as u8),
            _ => FlagSetting::Off,
        }
    }

    /// The share of keys that get `true`, 0–100.
    pub fn percent(self) -> u8 {
        match self {
            FlagSetting::Off => 0,
            FlagSetting::On => 100,
            FlagSetting::Percent(p) => p,
        }
    }

    /// The answer for `key`, computed as `flag()` computes it in SQL (the client crate
    /// caches the setting and asks this).
    pub fn answer(self, name: &str, key: Option<&str>) -> bool {
        match (self, key) {
            (FlagSetting::On, _) => true,
            (FlagSetting::Off, _) | (FlagSetting::Percent(_), None) => false,
            (FlagSetting::Percent(p), Some(k)) => bucket(name, k) < p as u32,
        }
    }
}

impl std::fmt::Display for FlagSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlagSetting::Off => f.write_str("off"),
            FlagSetting::On => f.write_str("on"),
            FlagSetting::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The bucket (0–99) of `key` for flag `name`: the first 32 bits of
/// `md5(name || ':' || key)`, big-endian, modulo 100 — what `flag()` computes in SQL.
pub fn bucket(name: &str, key: &str) -> u32 {
    use md5::{Digest, Md5};
    let d = Md5::new()
        .chain_update(name.as_bytes())
        .chain_update(b":")
        .chain_update(key.as_bytes())
        .finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % 100
}

#[cfg(test)]
mod tests {
    use super::{bucket, FlagSetting};

    #[test]
    fn settings_round_trip_through_the_state_columns() {
        for s in [FlagSetting::Off, FlagSetting::On, FlagSetting::Percent(30)] {
            let (state, percent) = s.columns();
            assert_eq!(FlagSetting::from_columns(state, percent), s);
        }
        assert_eq!(FlagSetting::Percent(30).columns(), ("percent", 30));
        assert_eq!(FlagSetting::from_columns("later", 50), FlagSetting::Off);
        assert_eq!(
            FlagSetting::from_columns("percent", 250),
            FlagSetting::Percent(100)
        );
    }

    #[test]
    fn settings_parse() {
        assert_eq!(FlagSetting::parse("on"), Ok(FlagSetting::On));
        assert_eq!(FlagSetting::parse("off"), Ok(FlagSetting::Off));
        assert_eq!(FlagSetting::parse("30"), Ok(FlagSetting::Percent(30)));
        assert_eq!(FlagSetting::parse("30%"), Ok(FlagSetting::Percent(30)));
        assert_eq!(FlagSetting::parse("100"), Ok(FlagSetting::On));
        assert_eq!(FlagSetting::parse("0%"), Ok(FlagSetting::Off));
        assert!(FlagSetting::parse("101").is_err());
        assert!(FlagSetting::parse("-1").is_err());
        assert!(FlagSetting::parse("half").is_err());
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // md5('a:b') = d8160c9b…: 0xd8160c9b = 3625323675, % 100 = 75.
        assert_eq!(bucket("a", "b"), 75);
        let on = (0..10_000)
            .filter(|i| FlagSetting::Percent(30).answer("f", Some(&i.to_string())))
            .count();
        assert!((2700..=3300).contains(&on), "{on}");
    }
}
