//! Template data: Docker's API records as Go's text/template sees them.
//!
//! Docker executes `--format` over Go values, where a struct and a map differ: a struct prints
//! as `{v1 v2 ...}` in field order and encodes to JSON in field order, a map prints as
//! `map[k1:v1 k2:v2]` with sorted keys. serde gives us JSON; [`Shape`] says which objects in
//! it are Go maps (everything else is a struct), and the conversion keeps each struct's field
//! order in a hidden entry that the printing functions read.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Result;
use gotmpl::Value;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// The hidden entry of a struct value: the list of its field names, in order. A name that
/// starts with `?` is a field Go's JSON leaves out when nil (`omitempty`); one that starts
/// with `!` is a nil slice or map, which prints `[]` or `map[]` but encodes as `null`.
pub(crate) const FIELDS: &str = "\u{0}fields";

/// A JSON value that keeps the order of object keys (serde_json's own `Value` sorts them).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Serialises `value` with serde and reads it back in order.
    pub fn of(value: &impl Serialize) -> Result<Json> {
        let text = serde_json::to_string(value)?;
        Ok(serde_json::from_str(&text)?)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        struct JsonVisitor;
        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("not a JSON number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut pairs = Vec::new();
                while let Some((key, value)) = map.next_entry()? {
                    pairs.push((key, value));
                }
                Ok(Json::Object(pairs))
            }
        }
        deserializer.deserialize_any(JsonVisitor)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Number(n) => n.serialize(serializer),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(pairs) => {
                let mut map = serializer.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Which objects of a record are Go maps, which `null`s are nil pointers, and which nil
/// struct fields Go has that the JSON leaves out.
///
/// Paths are object keys joined by `.` from the record's top (arrays are transparent:
/// `Mounts` is the path of each mount; a map's values are `<map path>.*`), e.g.
/// `Config.Labels`. A `null` is a nil slice (`[]`), a nil map if its path is in `maps`
/// (`map[]`), or a nil pointer (`<nil>`) if its path is in `pointers`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    /// The paths of the objects that are Go maps (`map[string]...`).
    pub maps: &'static [&'static str],
    /// The paths of pointer fields, whose `null` prints `<nil>`.
    pub pointers: &'static [&'static str],
    /// `(path, field)`: a pointer field, `omitempty` in JSON, that a template still sees as
    /// nil (`State.Health`).
    pub omitted: &'static [(&'static str, &'static str)],
}

/// Converts a record to template data, following `shape`.
pub fn to_value(json: &Json, shape: &Shape) -> Value {
    convert(json, shape, "")
}

fn convert(json: &Json, shape: &Shape, path: &str) -> Value {
    match json {
        Json::Null if shape.pointers.contains(&path) => Value::Nil,
        Json::Null if shape.maps.contains(&path) => Value::Map(Arc::new(BTreeMap::new())),
        Json::Null => Value::List(Arc::new([])),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.as_str().into()),
        Json::Array(items) => Value::List(items.iter().map(|i| convert(i, shape, path)).collect()),
        Json::Object(pairs) => {
            let child = |key: &str| {
                if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                }
            };
            let is_map = shape.maps.contains(&path);
            let mut map = BTreeMap::new();
            let mut fields = Vec::new();
            for (key, value) in pairs {
                // A map's values are reached by key, so they keep the map's own path.
                let sub = if is_map {
                    format!("{path}.*")
                } else {
                    child(key)
                };
                let converted = convert(value, shape, &sub);
                let nil = matches!(value, Json::Null) && !matches!(converted, Value::Nil);
                map.insert(Arc::from(key.as_str()), converted);
                let name = if nil { format!("!{key}") } else { key.clone() };
                fields.push(Value::String(name.into()));
            }
            if !is_map {
                for (at, field) in shape.omitted {
                    if *at == path && !map.contains_key(*field) {
                        map.insert(Arc::from(*field), Value::Nil);
                        fields.push(Value::String(format!("?{field}").into()));
                    }
                }
                map.insert(Arc::from(FIELDS), Value::List(fields.into()));
            }
            Value::Map(Arc::new(map))
        }
    }
}

/// How a struct field encodes to JSON when it is nil.
#[derive(Clone, Copy, PartialEq)]
enum Nil {
    /// Not nil, or a nil pointer: as its value.
    AsValue,
    /// `omitempty`: left out.
    Omitted,
    /// A nil slice or map: `null`.
    Null,
}

/// A struct value's fields in order, with how each encodes when nil; `None` for a map.
fn struct_fields(map: &BTreeMap<Arc<str>, Value>) -> Option<Vec<(&str, Nil)>> {
    let Some(Value::List(names)) = map.get(FIELDS) else {
        return None;
    };
    Some(
        names
            .iter()
            .filter_map(Value::as_str)
            .map(|name| {
                if let Some(name) = name.strip_prefix('?') {
                    (name, Nil::Omitted)
                } else if let Some(name) = name.strip_prefix('!') {
                    (name, Nil::Null)
                } else {
                    (name, Nil::AsValue)
                }
            })
            .collect(),
    )
}

/// Whether a value is a struct (as opposed to a map, a list or a scalar).
pub fn is_struct(value: &Value) -> bool {
    matches!(value, Value::Map(map) if map.contains_key(FIELDS))
}

/// A value as Go's `fmt` prints it with `%v`: strings bare, `[a b]`, `map[k:v]`, `{v1 v2}`,
/// `<nil>`.
pub fn go_string(value: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, value);
    out
}

fn write_go(out: &mut String, value: &Value) {
    match value {
        Value::Nil => out.push_str("<nil>"),
        Value::Float(f) => out.push_str(&go_float(*f)),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(out, item);
            }
            out.push(']');
        }
        Value::Map(map) => match struct_fields(map) {
            Some(fields) => {
                out.push('{');
                for (i, (name, _)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    write_go(out, map.get(*name).unwrap_or(&Value::Nil));
                }
                out.push('}');
            }
            None => {
                out.push_str("map[");
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{key}:");
                    write_go(out, item);
                }
                out.push(']');
            }
        },
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest digits, with
/// an exponent below 1e-4 and from 1e21 up.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let text = format!("{f:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{f}")
}

/// A value as Docker's `json` template function encodes it: structs in field order, maps by
/// sorted key, HTML characters not escaped.
pub fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &Value) {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    match value {
        Value::Nil | Value::Function(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Uint(u) => out.push_str(&u.to_string()),
        Value::Float(f) => out.push_str(
            &serde_json::Number::from_f64(*f).map_or_else(|| "null".into(), |n| n.to_string()),
        ),
        Value::String(s) => out.push_str(&quoted(s)),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Map(map) => {
            let entries: Vec<(&str, &Value)> = match struct_fields(map) {
                Some(fields) => fields
                    .into_iter()
                    .filter_map(|(name, nil)| {
                        let item = map.get(name).unwrap_or(&Value::Nil);
                        match nil {
                            Nil::Omitted if matches!(item, Value::Nil) => None,
                            Nil::Null => Some((name, &Value::Nil)),
                            _ => Some((name, item)),
                        }
                    })
                    .collect(),
                None => map.iter().map(|(k, v)| (k.as_ref(), v)).collect(),
            };
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quoted(key));
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_and_maps_print_as_go_prints_them() {
        let json: Json = serde_json::from_str(
            r#"{"State":{"Status":"running","Running":true,"Pid":42,"Error":""},
                "Labels":{"b":"2","a":"1"},"Env":["A=1","B=2"],"Cmd":null,"Ratio":0.5}"#,
        )
        .unwrap();
        let shape = Shape {
            maps: &["Labels"],
            pointers: &["State.Health"],
            omitted: &[("State", "Health")],
        };
        let value = to_value(&json, &shape);
        let field = |name: &str| value.field(name).unwrap().clone();
        assert_eq!(go_string(&field("State")), "{running true 42  <nil>}");
        assert_eq!(go_string(&field("Labels")), "map[a:1 b:2]");
        assert_eq!(go_string(&field("Env")), "[A=1 B=2]");
        // A nil slice prints `[]` and still encodes as null.
        assert_eq!(go_string(&field("Cmd")), "[]");
        assert!(go_json(&value).contains(r#""Cmd":null"#));
        assert_eq!(go_string(&field("Ratio")), "0.5");
        assert_eq!(
            go_json(&field("State")),
            r#"{"Status":"running","Running":true,"Pid":42,"Error":""}"#
        );
        assert_eq!(go_json(&field("Labels")), r#"{"a":"1","b":"2"}"#);
        assert!(is_struct(&value) && !is_struct(&field("Labels")));
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.25), "0.25");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.5e-7), "1.5e-07");
    }
}
