//! Table columns of a custom resource from its `additionalPrinterColumns`, as upstream's
//! apiextensions `tableconvertor`: `Name` first, then each column (an `Age` column over
//! `.metadata.creationTimestamp` when the CRD declares none). A `string` column prints the
//! first value its JSONPath finds as kubectl's JSONPath printer would; `integer`, `number` and
//! `boolean` columns carry typed cells; `date` columns print the age of an RFC 3339 time;
//! a path that finds nothing gives a null cell.

use serde_json::Value;

use super::{jsonpath, CustomInfo};
use crate::table::{human_secs, Column};

/// `metadata.creationTimestamp`'s API documentation, the default Age column's description.
pub const D_CREATED: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The CRD's columns (after `Name`).
pub fn columns(info: &'static CustomInfo) -> Vec<Column> {
    info.columns
        .iter()
        .map(|c| Column {
            name: &c.name,
            type_: &c.type_,
            format: &c.format,
            description: &c.description,
            priority: c.priority.clamp(0, i32::MAX as i64) as i32,
        })
        .collect()
}

/// The cells of `obj` for the CRD's columns (after `Name`).
pub fn cells(info: &CustomInfo, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    info.columns
        .iter()
        .map(|c| {
            let Ok(steps) = jsonpath::parse(&c.json_path) else {
                return Value::Null;
            };
            let found = jsonpath::eval(&steps, obj);
            let Some(v) = found.first() else {
                return Value::Null;
            };
            cell(&c.type_, v, now)
        })
        .collect()
}

fn cell(type_: &str, v: &Value, now: jiff::Timestamp) -> Value {
    match type_ {
        "string" => Value::String(match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }),
        "integer" => match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map_or(Value::Null, Value::from),
            _ => Value::Null,
        },
        "number" => match v {
            Value::Number(_) => v.clone(),
            _ => Value::Null,
        },
        "boolean" => match v {
            Value::Bool(_) => v.clone(),
            _ => Value::Null,
        },
        "date" => match v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) {
            Some(t) => Value::String(human_secs(now.duration_since(t).as_secs())),
            None => Value::Null,
        },
        _ => Value::Null,
    }
}
