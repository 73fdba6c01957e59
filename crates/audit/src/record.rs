//! What a leaf commits to: the canonical bytes of a record.
//!
//! A record is a JSON object written canonically — keys sorted by their UTF-8 bytes, no
//! whitespace, strings escaped as JSON does — so the same record always gives the same bytes.
//! Personal data (names, contacts) is not in the leaf: the leaf holds a salted SHA-256
//! commitment to it, and the data and its salt are kept beside the tree. Erasing them leaves
//! the tree intact; while they are kept, anyone given them can check them against the leaf.
//! [`split_personal`] decides what is personal: names and contacts, and every free-text field
//! (bodies, comments, reasons, responses, notes…), which may name anyone.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The version of the leaf format.
pub const LEAF_VERSION: u64 = 1;

/// A record of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `supervision_notice`, `notice_acknowledged`, `notice_response`, `assignment`,
    /// `adjustment_decision`, `extension_decision`, `reply_issued`, `class_changed`,
    /// `feedback`, `commitment_created`, `commitment_progressed`, `commitment_converted`, …
    pub record_type: String,
    /// The id of the event or notice the record comes from: a record is appended once per id.
    pub source_id: String,
    /// The suggestion it concerns, if any.
    pub subject: Option<String>,
    /// When it happened (RFC 3339).
    pub occurred_at: String,
    /// Who did it (role, agency, deputy ids; never names).
    pub actor: Value,
    /// What happened, without personal data.
    pub data: Value,
    /// Personal data kept beside the leaf, erasable.
    pub personal: Option<Value>,
}

impl Record {
    /// The leaf's bytes. `salt` is the personal data's salt (needed when there is any).
    pub fn leaf_input(&self, salt: &[u8; 32]) -> Vec<u8> {
        let mut fields = serde_json::Map::new();
        fields.insert("v".into(), Value::from(LEAF_VERSION));
        fields.insert("record_type".into(), Value::from(self.record_type.clone()));
        fields.insert("source_id".into(), Value::from(self.source_id.clone()));
        fields.insert(
            "subject".into(),
            self.subject.clone().map_or(Value::Null, Value::from),
        );
        fields.insert("occurred_at".into(), Value::from(self.occurred_at.clone()));
        fields.insert("actor".into(), self.actor.clone());
        fields.insert("data".into(), self.data.clone());
        if let Some(p) = &self.personal {
            fields.insert(
                "personal_commitment".into(),
                Value::from(personal_commitment(salt, p)),
            );
        }
        canonical(&Value::Object(fields)).into_bytes()
    }
}

/// Field names whose values are personal data or free text, wherever they appear in a
/// record's data.
pub const PERSONAL_FIELDS: &[&str] = &[
    // Names and contacts.
    "name",
    "handler",
    "responsible_leader",
    "leading_official",
    "participants",
    "attendees",
    "responsible",
    "contact",
    "phone",
    "email",
    "address",
    // Free text, which may name or describe anyone.
    "body",
    "comment",
    "response",
    "reason",
    "summary",
    "note",
    "measure",
    "evidence",
    "plan",
    "text",
    "content",
    "description",
    "minutes",
    "subject",
];

/// Moves every personal or free-text field (see [`PERSONAL_FIELDS`]) out of `data`, at any
/// depth; returns them keyed by their JSON pointer, or `None` when there were none.
pub fn split_personal(data: &mut Value) -> Option<Value> {
    let mut out = serde_json::Map::new();
    take_personal(data, "", &mut out);
    (!out.is_empty()).then_some(Value::Object(out))
}

fn take_personal(v: &mut Value, path: &str, out: &mut serde_json::Map<String, Value>) {
    match v {
        Value::Object(map) => {
            for key in PERSONAL_FIELDS {
                if let Some(x) = map.remove(*key) {
                    out.insert(format!("{path}/{}", pointer_escape(key)), x);
                }
            }
            for (k, x) in map.iter_mut() {
                take_personal(x, &format!("{path}/{}", pointer_escape(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter_mut().enumerate() {
                take_personal(x, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// RFC 6901: `~` as `~0`, `/` as `~1`.
fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Record {
    /// The deputies a record's personal data may concern: the deputy who acted, and every id
    /// under a `deputy`, `deputy_id`, `lead_deputy_id` or `deputies` field of its data.
    /// `banli audit erase --subject` finds a deputy's leaves by them.
    pub fn data_subjects(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(d) = self.actor.get("deputy").and_then(Value::as_str) {
            out.push(d.to_owned());
        }
        collect_deputies(&self.data, &mut out);
        out.sort();
        out.dedup();
        out
    }
}

fn collect_deputies(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if matches!(
                    k.as_str(),
                    "deputy" | "deputy_id" | "lead_deputy_id" | "deputies"
                ) {
                    match x {
                        Value::String(s) => out.push(s.clone()),
                        Value::Array(items) => {
                            out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
                        }
                        _ => {}
                    }
                }
                collect_deputies(x, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| collect_deputies(x, out)),
        _ => {}
    }
}

/// `hex(SHA-256(salt ‖ canonical(personal)))`.
pub fn personal_commitment(salt: &[u8; 32], personal: &Value) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(canonical(personal).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical JSON text of a value.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                if let Some(x) = map.get(k) {
                    write(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_contacts_and_free_text_leave_the_data_at_any_depth() {
        let mut data = json!({
            "reply": {"class": "B", "body": "我们将于年内完成", "signer": {"name": "李四", "position": "principal"}},
            "commitments": [{"measure": "建成平台", "target_date": "2021-06-30"}],
            "feedback": {"deputy": "d-1", "level": "satisfied", "comment": "感谢"},
            "a/b": {"note": "x"}
        });
        let personal = split_personal(&mut data).expect("personal data");
        assert_eq!(
            data,
            json!({
                "reply": {"class": "B", "signer": {"position": "principal"}},
                "commitments": [{"target_date": "2021-06-30"}],
                "feedback": {"deputy": "d-1", "level": "satisfied"},
                "a/b": {}
            })
        );
        assert_eq!(
            personal,
            json!({
                "/reply/body": "我们将于年内完成",
                "/reply/signer/name": "李四",
                "/commitments/0/measure": "建成平台",
                "/feedback/comment": "感谢",
                "/a~1b/note": "x"
            })
        );
        assert_eq!(split_personal(&mut json!({"class": "A"})), None);
    }

    #[test]
    fn data_subjects_are_the_deputies_named() {
        let r = Record {
            record_type: "feedback".into(),
            source_id: "e-1".into(),
            subject: Some("s-1".into()),
            occurred_at: "2026-03-02T09:00:00Z".into(),
            actor: json!({"role": "deputy", "deputy": "d-1"}),
            data: json!({"feedback": {"deputy": "d-1"}, "communication": {"deputies": ["d-2", "d-3"]}}),
            personal: None,
        };
        assert_eq!(r.data_subjects(), vec!["d-1", "d-2", "d-3"]);
    }

    #[test]
    fn canonical_sorts_keys_at_every_depth_and_drops_whitespace() {
        let v = json!({"b": [1, {"z": true, "a": null}], "a": "x\"y", "é": 1.5});
        assert_eq!(
            canonical(&v),
            r#"{"a":"x\"y","b":[1,{"a":null,"z":true}],"é":1.5}"#
        );
    }

    #[test]
    fn personal_data_is_committed_to_not_included() {
        let r = Record {
            record_type: "supervision_notice".into(),
            source_id: "n-1".into(),
            subject: Some("s-1".into()),
            occurred_at: "2026-03-02T09:00:00+08:00".into(),
            actor: json!({"role": "assigning_office"}),
            data: json!({"level": "notice"}),
            personal: Some(json!({"contact": "张三 138 0000 0000"})),
        };
        let salt = [7u8; 32];
        let leaf = String::from_utf8(r.leaf_input(&salt)).expect("utf-8");
        assert!(!leaf.contains("张三"), "{leaf}");
        assert!(leaf.contains(&personal_commitment(
            &salt,
            &json!({"contact": "张三 138 0000 0000"})
        )));
        // Another salt, another commitment: the data cannot be guessed from the leaf.
        assert_ne!(r.leaf_input(&salt), r.leaf_input(&[8u8; 32]));
        let without = Record {
            personal: None,
            ..r
        };
        assert!(
            !String::from_utf8(without.leaf_input(&salt))
                .expect("utf-8")
                .contains("personal")
        );
    }
}
