//! The JSON Schema of the spec format, for editors (`# yaml-language-server: $schema=…`) and
//! `specauth schema`.
//!
//! The document structs derive theirs; the values with hand-written deserializers (a short or a
//! long form, a position, a patch that may be `null`) say theirs here.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::doc::{At, ClientAuthDoc, ClientAuthMap, Field, Patch, Paths, ScalarString, SpecDoc};

impl<T: JsonSchema> JsonSchema for At<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

impl<T: JsonSchema> JsonSchema for Patch<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Nullable_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let inner = generator.subschema_for::<T>();
        json_schema!({ "anyOf": [inner, { "type": "null", "description": "null removes what the base spec says here" }] })
    }
}

impl JsonSchema for ScalarString {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ScalarString".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

impl JsonSchema for Paths {
    fn schema_name() -> Cow<'static, str> {
        "Paths".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A JSONPath, or a list of them where the first that matches wins",
            "anyOf": [
                { "type": "string", "pattern": "^\\$" },
                { "type": "array", "items": { "type": "string", "pattern": "^\\$" } }
            ]
        })
    }
}

impl JsonSchema for Field {
    fn schema_name() -> Cow<'static, str> {
        "Field".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A template, or { value, optional, repeat } where an optional field is left out when an input it uses is absent, and a repeated one is sent once per space-separated item",
            "anyOf": [
                { "type": ["string", "number", "boolean"] },
                {
                    "type": "object",
                    "properties": {
                        "value": { "type": ["string", "number", "boolean"] },
                        "optional": { "type": "boolean" },
                        "repeat": { "type": "boolean" }
                    },
                    "required": ["value"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl JsonSchema for ClientAuthDoc {
    fn schema_name() -> Cow<'static, str> {
        "ClientAuth".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let map = generator.subschema_for::<ClientAuthMap>();
        json_schema!({
            "anyOf": [
                { "type": "string", "enum": ["basic", "post", "both", "none"] },
                map
            ]
        })
    }
}

/// The JSON Schema (draft 7) of the spec format, generated from the types the loader reads.
pub(crate) fn schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<SpecDoc>();
    serde_json::to_value(schema).unwrap_or_default()
}
