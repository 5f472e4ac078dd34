//! One generic value tree for both body formats.
//!
//! Requests are first parsed into a [`Tree`] — from JSON through serde (keeping member order,
//! which validation messages show), from CBOR through `ciborium::Value` — so that type checks can
//! see what a member really held and answer with AWS's texts, before anything typed is built.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A parsed body value. Maps keep their members in order (the last of duplicate keys wins, in the
/// position of the first, as `JSON.parse` does).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tree {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Tree>),
    Map(Vec<(String, Tree)>),
    /// A CBOR tag and its content (tag 1 marks a timestamp in epoch milliseconds).
    Tag(u64, Box<Tree>),
}

impl Tree {
    pub(crate) fn get(&self, key: &str) -> Option<&Tree> {
        match self {
            Tree::Map(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Parses a JSON body.
    pub(crate) fn from_json(body: &[u8]) -> Option<Tree> {
        serde_json::from_slice(body).ok()
    }

    /// Parses the first CBOR item of a body.
    pub(crate) fn from_cbor(body: &[u8]) -> Option<Tree> {
        let value: ciborium::Value = ciborium::from_reader(body).ok()?;
        Some(Tree::from_cbor_value(value))
    }

    fn from_cbor_value(value: ciborium::Value) -> Tree {
        use ciborium::Value as V;
        match value {
            V::Integer(i) => Tree::Int(i128::from(i)),
            V::Bytes(b) => Tree::Bytes(b),
            V::Float(f) => Tree::Float(f),
            V::Text(s) => Tree::Str(s),
            V::Bool(b) => Tree::Bool(b),
            V::Null => Tree::Null,
            V::Tag(tag, inner) => Tree::Tag(tag, Box::new(Tree::from_cbor_value(*inner))),
            V::Array(items) => Tree::List(items.into_iter().map(Tree::from_cbor_value).collect()),
            V::Map(entries) => {
                let mut members: Vec<(String, Tree)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    // Members are named by text; anything else cannot name a member.
                    if let V::Text(key) = k {
                        insert_member(&mut members, key, Tree::from_cbor_value(v));
                    }
                }
                Tree::Map(members)
            }
            // `ciborium::Value` is non-exhaustive.
            _ => Tree::Null,
        }
    }

    /// Converts a checked tree into a `ciborium::Value` for typed deserialization. Timestamps are
    /// plain integers of milliseconds by then, blobs byte strings.
    pub(crate) fn into_cbor_value(self) -> ciborium::Value {
        use ciborium::Value as V;
        match self {
            Tree::Null => V::Null,
            Tree::Bool(b) => V::Bool(b),
            Tree::Int(i) => match ciborium::value::Integer::try_from(i) {
                Ok(i) => V::Integer(i),
                Err(_) => V::Float(i as f64),
            },
            Tree::Float(f) => V::Float(f),
            Tree::Str(s) => V::Text(s),
            Tree::Bytes(b) => V::Bytes(b),
            Tree::List(items) => V::Array(items.into_iter().map(Tree::into_cbor_value).collect()),
            Tree::Map(members) => V::Map(
                members
                    .into_iter()
                    .map(|(k, v)| (V::Text(k), v.into_cbor_value()))
                    .collect(),
            ),
            Tree::Tag(_, inner) => inner.into_cbor_value(),
        }
    }
}

fn insert_member(members: &mut Vec<(String, Tree)>, key: String, value: Tree) {
    if let Some(slot) = members.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
    } else {
        members.push((key, value));
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Int(i128::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Tree, E> {
        Ok(Tree::Bytes(v.to_vec()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Tree>()? {
            items.push(item);
        }
        Ok(Tree::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Tree>()? {
            insert_member(&mut members, key, value);
        }
        Ok(Tree::Map(members))
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_member_order_and_last_duplicate() {
        let tree = Tree::from_json(br#"{"b":1,"a":2.5,"b":"x","c":[true,null]}"#).unwrap();
        assert_eq!(
            tree,
            Tree::Map(vec![
                ("b".into(), Tree::Str("x".into())),
                ("a".into(), Tree::Float(2.5)),
                ("c".into(), Tree::List(vec![Tree::Bool(true), Tree::Null])),
            ])
        );
    }

    #[test]
    fn cbor_keeps_tags_and_bytes() {
        let value = ciborium::Value::Map(vec![
            (
                ciborium::Value::Text("T".into()),
                ciborium::Value::Tag(1, Box::new(ciborium::Value::Integer(5.into()))),
            ),
            (
                ciborium::Value::Text("D".into()),
                ciborium::Value::Bytes(vec![1, 2]),
            ),
            (ciborium::Value::Integer(1.into()), ciborium::Value::Null),
        ]);
        let mut body = Vec::new();
        ciborium::into_writer(&value, &mut body).unwrap();
        let tree = Tree::from_cbor(&body).unwrap();
        assert_eq!(tree.get("T"), Some(&Tree::Tag(1, Box::new(Tree::Int(5)))));
        assert_eq!(tree.get("D"), Some(&Tree::Bytes(vec![1, 2])));
        assert_eq!(tree, {
            let Tree::Map(m) = &tree else { panic!() };
            assert_eq!(m.len(), 2);
            tree.clone()
        });
    }

    #[test]
    fn garbage_is_not_a_tree() {
        assert_eq!(Tree::from_json(b"{"), None);
        assert_eq!(Tree::from_json(b"{} x"), None);
        assert_eq!(Tree::from_cbor(b""), None);
        assert_eq!(Tree::from_cbor(&[0xbf]), None);
    }
}
