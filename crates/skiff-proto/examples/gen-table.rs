//! Generates `src/table.rs`, the message table of the protobuf decoder, from the Go API types.
//!
//! The Go struct tags of `k8s.io/api` and its siblings carry everything the decoder needs: the
//! protobuf field number and wire type, the JSON name, `omitempty`, `,inline`, and (from the Go
//! type) whether a scalar is a pointer. Only these facts are written out; no upstream code is.
//!
//! ```text
//! for r in api apimachinery kube-aggregator apiextensions-apiserver; do
//!   mkdir -p /tmp/k8ssrc/$r
//!   git -C <clone of kubernetes/$r> archive v0.32.4 | tar -x -C /tmp/k8ssrc/$r
//! done
//! cargo run -p skiff-proto --example gen-table -- /tmp/k8ssrc > crates/skiff-proto/src/table.rs
//! ```
//!
//! The roots are every kind in `skiff_core::registry::RESOURCES`, the kinds of their
//! subresources, and the review and option kinds listed in [`EXTRA_ROOTS`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow_free::{bail, Result};

/// Minimal error plumbing so the example needs no extra dependency.
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, String>;
    macro_rules! bail {
        ($($t:tt)*) => { return Err(format!($($t)*)) };
    }
    pub(crate) use bail;
}

/// Kinds sent as bodies that are not resources of their own.
const EXTRA_ROOTS: &[(&str, &str, &str)] = &[
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "v1", "SubjectAccessReview"),
    ("authorization.k8s.io", "v1", "LocalSubjectAccessReview"),
    ("authentication.k8s.io", "v1", "SelfSubjectReview"),
    ("authentication.k8s.io", "v1", "TokenReview"),
    ("authentication.k8s.io", "v1", "TokenRequest"),
    ("meta.k8s.io", "v1", "DeleteOptions"),
];

/// Go package path of a group-version.
fn package_of(group: &str, version: &str) -> String {
    match group {
        "" => format!("k8s.io/api/core/{version}"),
        "meta.k8s.io" => format!("k8s.io/apimachinery/pkg/apis/meta/{version}"),
        "apiregistration.k8s.io" => {
            format!("k8s.io/kube-aggregator/pkg/apis/apiregistration/{version}")
        }
        "apiextensions.k8s.io" => {
            format!("k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/{version}")
        }
        g => format!("k8s.io/api/{}/{version}", g.split('.').next().unwrap_or(g)),
    }
}

/// Messages with hand-written JSON forms, by Go package path and type name.
fn special_of(path: &str, name: &str) -> Option<&'static str> {
    Some(match (path, name) {
        ("k8s.io/apimachinery/pkg/apis/meta/v1", "Time") => "Time",
        ("k8s.io/apimachinery/pkg/apis/meta/v1", "MicroTime") => "MicroTime",
        ("k8s.io/apimachinery/pkg/apis/meta/v1", "Duration") => "Duration",
        ("k8s.io/apimachinery/pkg/apis/meta/v1", "FieldsV1") => "FieldsV1",
        ("k8s.io/apimachinery/pkg/util/intstr", "IntOrString") => "IntOrString",
        ("k8s.io/apimachinery/pkg/api/resource", "Quantity") => "Quantity",
        ("k8s.io/apimachinery/pkg/runtime", "RawExtension") => "RawExtension",
        ("k8s.io/apimachinery/pkg/runtime", "Unknown") => "Unknown",
        ("k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1", "JSON") => "RawExtension",
        _ => return None,
    })
}

/// Structs decoded field by field whose JSON form is one of their fields (apiextensions'
/// either-or schema types). Their fields get JSON names from the Go names.
fn either_of(path: &str, name: &str) -> Option<&'static str> {
    Some(match (path, name) {
        ("k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1", "JSONSchemaPropsOrArray") => {
            "SchemaOrArray"
        }
        ("k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1", "JSONSchemaPropsOrBool") => {
            "SchemaOrBool"
        }
        (
            "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1",
            "JSONSchemaPropsOrStringArray",
        ) => "SchemaOrStringArray",
        _ => return None,
    })
}

/// The OpenAPI definition name upstream gives a Go type: reversed domain, then the path.
fn definition_name(path: &str, name: &str) -> String {
    let rest = path.strip_prefix("k8s.io/").unwrap_or(path);
    format!("io.k8s.{}.{name}", rest.replace('/', "."))
}

#[derive(Debug, Clone)]
struct GoField {
    go_name: String,
    ty: String,
    json: Option<String>,
    omitempty: bool,
    inline: bool,
    number: Option<u32>,
    wire: String,
}

#[derive(Debug, Clone)]
enum Decl {
    Struct(Vec<GoField>),
    Alias(String),
}

#[derive(Debug)]
struct TypeDecl {
    decl: Decl,
    imports: HashMap<String, String>,
}

struct Sources {
    root: PathBuf,
    packages: HashMap<String, HashMap<String, TypeDecl>>,
}

impl Sources {
    fn dir_of(&self, path: &str) -> Option<PathBuf> {
        for repo in [
            "api",
            "apimachinery",
            "kube-aggregator",
            "apiextensions-apiserver",
        ] {
            let prefix = format!("k8s.io/{repo}/");
            if let Some(rest) = path.strip_prefix(&prefix) {
                return Some(self.root.join(repo).join(rest));
            }
        }
        None
    }

    fn package(&mut self, path: &str) -> Result<&HashMap<String, TypeDecl>> {
        if !self.packages.contains_key(path) {
            let dir = self
                .dir_of(path)
                .ok_or_else(|| format!("no source for package {path}"))?;
            let decls = parse_package(&dir)?;
            self.packages.insert(path.to_string(), decls);
        }
        Ok(&self.packages[path])
    }
}

fn parse_package(dir: &Path) -> Result<HashMap<String, TypeDecl>> {
    let mut out = HashMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".go")
            || name.ends_with("_test.go")
            || name.starts_with("zz_generated")
            || name.ends_with(".pb.go")
            || name.contains("fuzz")
            || name.contains("swagger_doc")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{name}: {e}"))?;
        parse_file(&text, &mut out);
    }
    Ok(out)
}

fn parse_file(text: &str, out: &mut HashMap<String, TypeDecl>) {
    let mut imports = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let add_import = |line: &str, imports: &mut HashMap<String, String>| {
        let line = line.trim();
        let Some(q) = line.find('"') else { return };
        let path = line[q + 1..].trim_end_matches('"').to_string();
        let alias = line[..q].trim();
        let alias = if alias.is_empty() {
            path.rsplit('/').next().unwrap_or(&path).to_string()
        } else {
            alias.to_string()
        };
        imports.insert(alias, path);
    };
    while i < lines.len() {
        let line = lines[i];
        if line == "import (" {
            i += 1;
            while i < lines.len() && lines[i] != ")" {
                add_import(lines[i], &mut imports);
                i += 1;
            }
        } else if let Some(rest) = line.strip_prefix("import ") {
            add_import(rest, &mut imports);
        }
        i += 1;
    }
    let mut i = 0;
    let mut in_group = false;
    while i < lines.len() {
        let line = lines[i];
        let decl_line = if in_group {
            if line == ")" {
                in_group = false;
                i += 1;
                continue;
            }
            line.strip_prefix('\t')
        } else if line == "type (" {
            in_group = true;
            i += 1;
            continue;
        } else {
            line.strip_prefix("type ")
        };
        let Some(decl_line) = decl_line else {
            i += 1;
            continue;
        };
        let mut parts = decl_line.splitn(2, ' ');
        let name = parts.next().unwrap_or("").to_string();
        let rest = parts.next().unwrap_or("").trim();
        if name.is_empty() || !name.chars().next().unwrap().is_ascii_uppercase() {
            i += 1;
            continue;
        }
        if rest == "struct {" {
            let mut fields = Vec::new();
            i += 1;
            let close = if in_group { "\t}" } else { "}" };
            while i < lines.len() && lines[i] != close {
                if let Some(f) = parse_field(lines[i]) {
                    fields.push(f);
                }
                i += 1;
            }
            out.insert(
                name,
                TypeDecl {
                    decl: Decl::Struct(fields),
                    imports: imports.clone(),
                },
            );
        } else if rest == "struct{}" {
            out.insert(
                name,
                TypeDecl {
                    decl: Decl::Struct(vec![]),
                    imports: imports.clone(),
                },
            );
        } else if !rest.is_empty()
            && !rest.starts_with("interface")
            && !rest.starts_with("func")
            && !rest.starts_with('=')
        {
            let ty = rest.split_whitespace().next().unwrap_or("").to_string();
            out.insert(
                name,
                TypeDecl {
                    decl: Decl::Alias(ty),
                    imports: imports.clone(),
                },
            );
        }
        i += 1;
    }
}

fn tag_value<'a>(tags: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("{key}:\"");
    let start = tags.find(&needle)? + needle.len();
    let end = tags[start..].find('"')?;
    Some(&tags[start..start + end])
}

fn parse_field(line: &str) -> Option<GoField> {
    let t = line.trim();
    if t.is_empty() || t.starts_with("//") {
        return None;
    }
    let (decl, tags) = match (t.find('`'), t.rfind('`')) {
        (Some(a), Some(b)) if b > a => (t[..a].trim(), &t[a + 1..b]),
        _ => (t, ""),
    };
    let decl = decl.split("//").next().unwrap_or("").trim();
    let toks: Vec<&str> = decl.split_whitespace().collect();
    let (go_name, ty) = match toks.as_slice() {
        [ty] => (
            ty.rsplit('.').next().unwrap_or(ty).to_string(),
            ty.to_string(),
        ),
        [name, ty] => (name.to_string(), ty.to_string()),
        _ => return None,
    };
    let json = tag_value(tags, "json");
    let (json_name, omitempty, inline) = match json {
        Some(j) => {
            let mut it = j.split(',');
            let n = it.next().unwrap_or("");
            let opts: Vec<&str> = it.collect();
            (
                if n.is_empty() {
                    None
                } else {
                    Some(n.to_string())
                },
                opts.contains(&"omitempty"),
                opts.contains(&"inline"),
            )
        }
        None => (None, false, false),
    };
    let proto = tag_value(tags, "protobuf");
    let (number, wire) = match proto {
        Some(p) if p != "-" => {
            let mut it = p.split(',');
            let wire = it.next().unwrap_or("").to_string();
            let n = it.next().and_then(|n| n.parse().ok());
            (n, wire)
        }
        _ => (None, String::new()),
    };
    Some(GoField {
        go_name,
        ty,
        json: json_name,
        omitempty,
        inline,
        number,
        wire,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Ty {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    Bytes,
    Message(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Single,
    Repeated,
    Map,
}

struct OutField {
    number: u32,
    json: String,
    ty: Ty,
    shape: Shape,
    presence: &'static str,
}

struct OutMessage {
    name: String,
    special: &'static str,
    fields: Vec<OutField>,
}

struct Gen {
    src: Sources,
    messages: BTreeMap<String, Option<OutMessage>>,
    order: Vec<String>,
}

impl Gen {
    /// Resolves a Go type in the context of a package and its file's imports.
    fn resolve(
        &mut self,
        pkg: &str,
        imports: &HashMap<String, String>,
        ty: &str,
    ) -> Result<(Ty, Shape, bool)> {
        if let Some(inner) = ty.strip_prefix('*') {
            let (t, s, _) = self.resolve(pkg, imports, inner)?;
            return Ok((t, s, true));
        }
        if ty == "[]byte" {
            return Ok((Ty::Bytes, Shape::Single, false));
        }
        if let Some(elem) = ty.strip_prefix("[]") {
            let (t, s, _) = self.resolve(pkg, imports, elem)?;
            if s != Shape::Single {
                bail!("nested collection {ty} in {pkg}");
            }
            return Ok((t, Shape::Repeated, false));
        }
        if let Some(rest) = ty.strip_prefix("map[") {
            let close = rest.find(']').ok_or_else(|| format!("bad map type {ty}"))?;
            let (k, _, _) = self.resolve(pkg, imports, &rest[..close])?;
            if k != Ty::String {
                bail!("map with non-string keys {ty}");
            }
            let v = &rest[close + 1..];
            let vt = self.map_value(pkg, imports, v)?;
            return Ok((vt, Shape::Map, false));
        }
        match ty {
            "string" => return Ok((Ty::String, Shape::Single, false)),
            "bool" => return Ok((Ty::Bool, Shape::Single, false)),
            "int32" => return Ok((Ty::Int32, Shape::Single, false)),
            "int64" | "int" => return Ok((Ty::Int64, Shape::Single, false)),
            "float64" => return Ok((Ty::Double, Shape::Single, false)),
            _ => {}
        }
        let (path, name) = match ty.split_once('.') {
            Some((alias, name)) => (
                imports
                    .get(alias)
                    .cloned()
                    .ok_or_else(|| format!("unknown import {alias} in {pkg}"))?,
                name.to_string(),
            ),
            None => (pkg.to_string(), ty.to_string()),
        };
        if let Some(special) = special_of(&path, &name) {
            let def = definition_name(&path, &name);
            if !self.messages.contains_key(&def) {
                self.order.push(def.clone());
                self.messages.insert(
                    def.clone(),
                    Some(OutMessage {
                        name: def.clone(),
                        special,
                        fields: vec![],
                    }),
                );
            }
            return Ok((Ty::Message(def), Shape::Single, false));
        }
        let decls = self.src.package(&path)?;
        let Some(d) = decls.get(&name) else {
            bail!("type {name} not found in {path}");
        };
        match &d.decl {
            Decl::Alias(under) => {
                let under = under.clone();
                let imps = d.imports.clone();
                self.resolve(&path, &imps, &under)
            }
            Decl::Struct(_) => {
                let def = definition_name(&path, &name);
                self.message(&path, &name)?;
                Ok((Ty::Message(def), Shape::Single, false))
            }
        }
    }

    /// A map's value type: a named slice becomes a wrapper message of `items`.
    fn map_value(&mut self, pkg: &str, imports: &HashMap<String, String>, v: &str) -> Result<Ty> {
        if !v.starts_with("[]") && !v.contains('.') && !matches!(v, "string" | "bool") {
            let decls = self.src.package(pkg)?;
            if let Some(TypeDecl {
                decl: Decl::Alias(under),
                imports: imps,
            }) = decls.get(v)
            {
                if let Some(elem) = under.strip_prefix("[]") {
                    let (et, _, _) = {
                        let (elem, imps) = (elem.to_string(), imps.clone());
                        self.resolve(pkg, &imps, &elem)?
                    };
                    let def = definition_name(pkg, v);
                    if !self.messages.contains_key(&def) {
                        self.order.push(def.clone());
                        self.messages.insert(
                            def.clone(),
                            Some(OutMessage {
                                name: def.clone(),
                                special: "Items",
                                fields: vec![OutField {
                                    number: 1,
                                    json: "items".into(),
                                    ty: et,
                                    shape: Shape::Repeated,
                                    presence: "OmitEmpty",
                                }],
                            }),
                        );
                    }
                    return Ok(Ty::Message(def));
                }
            }
        }
        let (t, s, _) = self.resolve(pkg, imports, v)?;
        if s != Shape::Single {
            bail!("map value {v} in {pkg} is a collection");
        }
        Ok(t)
    }

    /// Adds a struct (and everything it references) to the table.
    fn message(&mut self, path: &str, name: &str) -> Result<String> {
        let def = definition_name(path, name);
        if self.messages.contains_key(&def) {
            return Ok(def);
        }
        self.messages.insert(def.clone(), None);
        self.order.push(def.clone());
        let decls = self.src.package(path)?;
        let Some(TypeDecl {
            decl: Decl::Struct(fields),
            imports,
        }) = decls.get(name)
        else {
            bail!("{name} in {path} is not a struct");
        };
        let (fields, imports) = (fields.clone(), imports.clone());
        let either = either_of(path, name);
        let mut out = Vec::new();
        for mut f in fields {
            let Some(number) = f.number else { continue };
            if either.is_some() {
                let mut n = f.go_name.clone();
                n[..1].make_ascii_lowercase();
                f.json = Some(n);
            }
            if !f.inline && f.json.is_none() {
                bail!("{def}.{}: protobuf field without a JSON name", f.go_name);
            }
            let (ty, shape, pointer) = self.resolve(path, &imports, &f.ty)?;
            let wire_ok = matches!(
                (&ty, shape == Shape::Map, f.wire.as_str()),
                (_, true, "bytes")
                    | (Ty::Bool | Ty::Int32 | Ty::Int64, false, "varint")
                    | (Ty::Double, false, "fixed64")
                    | (Ty::String | Ty::Bytes | Ty::Message(_), false, "bytes")
            );
            if !wire_ok {
                // The Go type decides the protobuf type (some tags are wrong, e.g.
                // SecretVolumeSource.defaultMode says bytes for an int32).
                eprintln!(
                    "gen-table: note: {def}.{}: tag says {} for {ty:?}",
                    f.go_name, f.wire
                );
            }
            if f.inline && !matches!(ty, Ty::Message(_)) {
                bail!("{def}.{}: inline field is not a message", f.go_name);
            }
            let presence = if pointer {
                "Pointer"
            } else if f.omitempty {
                "OmitEmpty"
            } else {
                "Always"
            };
            out.push(OutField {
                number,
                json: if f.inline {
                    String::new()
                } else {
                    f.json.clone().unwrap_or_default()
                },
                ty,
                shape,
                presence,
            });
        }
        self.messages.insert(
            def.clone(),
            Some(OutMessage {
                name: def.clone(),
                special: either.unwrap_or("None"),
                fields: out,
            }),
        );
        Ok(def)
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("gen-table: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let root = std::env::args()
        .nth(1)
        .ok_or("usage: gen-table <dir holding api/ apimachinery/ kube-aggregator/ apiextensions-apiserver/>")?;
    let mut gen = Gen {
        src: Sources {
            root: PathBuf::from(root),
            packages: HashMap::new(),
        },
        messages: BTreeMap::new(),
        order: Vec::new(),
    };
    let mut roots: Vec<(String, String, String)> = Vec::new();
    let mut push_root = |g: &str, v: &str, k: &str| {
        let r = (g.to_string(), v.to_string(), k.to_string());
        if !roots.contains(&r) {
            roots.push(r);
        }
    };
    for r in skiff_core::registry::RESOURCES {
        push_root(r.group, r.version, r.kind);
        for s in r.subresources {
            if matches!(s.name, "status" | "finalize") {
                continue;
            }
            let g = if s.group.is_empty() { r.group } else { s.group };
            let v = if s.version.is_empty() {
                r.version
            } else {
                s.version
            };
            push_root(g, v, s.kind);
        }
    }
    for (g, v, k) in EXTRA_ROOTS {
        push_root(g, v, k);
    }
    let mut root_defs = Vec::new();
    for (g, v, k) in &roots {
        let def = gen.message(&package_of(g, v), k)?;
        root_defs.push((g.clone(), v.clone(), k.clone(), def));
    }
    let index: HashMap<String, usize> = gen
        .order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let ty = |t: &Ty| match t {
        Ty::String => "String".to_string(),
        Ty::Bool => "Bool".to_string(),
        Ty::Int32 => "Int32".to_string(),
        Ty::Int64 => "Int64".to_string(),
        Ty::Double => "Double".to_string(),
        Ty::Bytes => "Bytes".to_string(),
        Ty::Message(n) => format!("Message({})", index[n]),
    };
    let mut s = String::new();
    writeln!(
        s,
        "//! @generated by `cargo run -p skiff-proto --example gen-table` from the Go API types of\n\
         //! k8s.io/api, apimachinery, kube-aggregator and apiextensions-apiserver v0.32.4 (field\n\
         //! numbers, JSON names, pointers and `omitempty`). Do not edit; regenerate.\n\n\
         use crate::schema::{{f, Message as M, Presence::*, Root, Shape::*, Special as S, Ty::*}};\n"
    )
    .unwrap();
    writeln!(s, "#[rustfmt::skip]\npub static MESSAGES: &[M] = &[").unwrap();
    for (i, name) in gen.order.iter().enumerate() {
        let m = gen.messages[name].as_ref().unwrap();
        if m.fields.is_empty() {
            writeln!(
                s,
                "    /* {i} */ M {{ name: \"{}\", special: S::{}, fields: &[] }},",
                m.name, m.special
            )
            .unwrap();
            continue;
        }
        writeln!(
            s,
            "    /* {i} */ M {{ name: \"{}\", special: S::{}, fields: &[",
            m.name, m.special
        )
        .unwrap();
        for f in &m.fields {
            writeln!(
                s,
                "        f({}, \"{}\", {}, {:?}, {}),",
                f.number,
                f.json,
                ty(&f.ty),
                f.shape,
                f.presence
            )
            .unwrap();
        }
        writeln!(s, "    ] }},").unwrap();
    }
    writeln!(s, "];\n\n#[rustfmt::skip]\npub static ROOTS: &[Root] = &[").unwrap();
    for (g, v, k, def) in &root_defs {
        writeln!(
            s,
            "    Root {{ group: \"{g}\", version: \"{v}\", kind: \"{k}\", message: {} }},",
            index[def]
        )
        .unwrap();
    }
    writeln!(s, "];").unwrap();
    print!("{s}");
    Ok(())
}
