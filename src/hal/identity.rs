//! Which board this is: the default station id, unique per Pi.
//!
//! Every Pi set up from the same example must not share a station id (it is the MQTT
//! client id, the topic prefix and the Home Assistant ids: two stations with one id take
//! each other's broker session). The hostname does not help (`raspberrypi` on every Pi set
//! up with the defaults), nor does `/etc/machine-id` alone, which every SD card cloned
//! from one image shares. So the id comes from:
//!
//! 1. the board's serial number, `<sys_root>/firmware/devicetree/base/serial-number` (a
//!    Raspberry Pi, and most device-tree boards): unique per board, whatever card is in it;
//! 2. else the machine id together with the first network interface's hardware address
//!    (`<sys_root>/class/net/*/address`), so cloned cards on two boards still differ;
//! 3. else the machine id alone, or the hardware address alone, whichever exists.
//!
//! The id is `anemone-` and the first 8 hex digits of a SHA-256 of what was found: short,
//! readable in topics, and the same at every start on the same board.
//!
//! `[hal] sys_root` and `[hal] machine_id_file` point tests at fake trees, the way
//! `w1_root` does for 1-Wire.

use std::path::{Path, PathBuf};

use super::HalConfig;

/// Default root of sysfs.
pub const DEFAULT_SYS_ROOT: &str = "/sys";
/// Default machine-id file (systemd).
pub const DEFAULT_MACHINE_ID_FILE: &str = "/etc/machine-id";

/// What identifies this board, as far as the system says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardIds {
    /// The board's serial number (device tree).
    pub serial: Option<String>,
    /// `/etc/machine-id`.
    pub machine_id: Option<String>,
    /// The hardware address of the first network interface (by name), loopback and
    /// all-zero addresses left out.
    pub mac: Option<String>,
}

impl BoardIds {
    /// Reads what `cfg` points at; what is missing or empty is `None`.
    pub fn read(cfg: &HalConfig) -> BoardIds {
        BoardIds {
            serial: read_text(&serial_number_path(&cfg.sys_root)),
            machine_id: read_text(&cfg.machine_id_file),
            mac: first_mac(&cfg.sys_root.join("class/net")),
        }
    }

    /// What the id is derived from (see the module docs), `None` when nothing is known.
    fn source(&self) -> Option<String> {
        match (&self.serial, &self.machine_id, &self.mac) {
            (Some(serial), _, _) => Some(format!("serial:{serial}")),
            (None, Some(id), Some(mac)) => Some(format!("machine-id:{id}|mac:{mac}")),
            (None, Some(id), None) => Some(format!("machine-id:{id}")),
            (None, None, Some(mac)) => Some(format!("mac:{mac}")),
            (None, None, None) => None,
        }
    }

    /// The default station id, `anemone-1a2b3c4d`; `None` when the system says nothing
    /// about the board.
    pub fn station_id(&self) -> Option<String> {
        let source = self.source()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, source.as_bytes());
        let hex: String = digest
            .as_ref()
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(format!("anemone-{hex}"))
    }
}

/// The device tree's serial number under `sys_root`.
fn serial_number_path(sys_root: &Path) -> PathBuf {
    sys_root.join("firmware/devicetree/base/serial-number")
}

/// A file's text, trimmed of whitespace and the device tree's trailing NUL; `None` when
/// missing, unreadable, empty or all zeros.
fn read_text(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if text.is_empty() || text.chars().all(|c| c == '0') {
        return None;
    }
    Some(text.to_ascii_lowercase())
}

/// The hardware address of the first interface (by name) under `class_net` that has a
/// real one.
fn first_mac(class_net: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(class_net)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.into_iter().find_map(|n| {
        read_text(&class_net.join(n).join("address"))
            .filter(|a| a.chars().any(|c| c.is_ascii_hexdigit() && c != '0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs root and machine-id file in a temporary directory.
    fn board(
        serial: Option<&str>,
        machine_id: Option<&str>,
        mac: Option<&str>,
    ) -> (tempfile::TempDir, HalConfig) {
        let dir = tempfile::tempdir().expect("tempdir");
        let sys = dir.path().join("sys");
        if let Some(s) = serial {
            let p = serial_number_path(&sys);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, format!("{s}\0")).expect("write serial");
        }
        let lo = sys.join("class/net/lo");
        std::fs::create_dir_all(&lo).expect("mkdir lo");
        std::fs::write(lo.join("address"), "00:00:00:00:00:00\n").expect("write lo");
        if let Some(m) = mac {
            let eth = sys.join("class/net/eth0");
            std::fs::create_dir_all(&eth).expect("mkdir eth0");
            std::fs::write(eth.join("address"), format!("{m}\n")).expect("write mac");
        }
        let mid = dir.path().join("machine-id");
        if let Some(m) = machine_id {
            std::fs::write(&mid, format!("{m}\n")).expect("write machine-id");
        }
        let cfg = HalConfig {
            sys_root: sys,
            machine_id_file: mid,
            ..HalConfig::default()
        };
        (dir, cfg)
    }

    fn id_of(cfg: &HalConfig) -> Option<String> {
        BoardIds::read(cfg).station_id()
    }

    const CLONED: &str = "3f2a9c0d8e7b4a5f9c1d2e3f4a5b6c7d";

    #[test]
    fn two_boards_get_two_ids_and_each_keeps_its_own() {
        let (_a, a) = board(
            Some("10000000a1b2c3d4"),
            Some(CLONED),
            Some("dc:a6:32:00:00:01"),
        );
        let (_b, b) = board(
            Some("10000000e5f60718"),
            Some(CLONED),
            Some("dc:a6:32:00:00:01"),
        );
        let (ia, ib) = (id_of(&a).expect("id a"), id_of(&b).expect("id b"));
        assert_ne!(ia, ib, "two serial numbers, one cloned card");
        for id in [&ia, &ib] {
            assert!(id.starts_with("anemone-") && id.len() == 16, "{id}");
            assert!(id[8..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
        // Stable across restarts: the same board gives the same id.
        assert_eq!(id_of(&a).as_deref(), Some(ia.as_str()));
        // The serial number decides, not the card: another card in board a.
        let (_c, c) = board(
            Some("10000000a1b2c3d4"),
            Some("0123456789abcdef0123456789abcdef"),
            None,
        );
        assert_eq!(id_of(&c), Some(ia));
    }

    #[test]
    fn without_a_serial_number_the_machine_id_and_the_network_address() {
        let (_a, a) = board(None, Some(CLONED), Some("b8:27:eb:00:00:01"));
        let (_b, b) = board(None, Some(CLONED), Some("b8:27:eb:00:00:02"));
        assert_ne!(id_of(&a), id_of(&b), "cloned cards on two boards");
        let (_c, c) = board(None, Some(CLONED), None);
        let (_d, d) = board(None, Some("0123456789abcdef0123456789abcdef"), None);
        assert!(id_of(&c).is_some());
        assert_ne!(id_of(&c), id_of(&d));
        // An all-zero serial (some boards) counts as none.
        let (_e, e) = board(Some("0000000000000000"), Some(CLONED), None);
        assert_eq!(id_of(&e), id_of(&c));
        let (_f, f) = board(None, None, None);
        assert_eq!(id_of(&f), None);
    }
}
