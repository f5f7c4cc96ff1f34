//! Field management (`metadata.managedFields`) and server-side apply, as upstream's
//! k8s.io/apiserver fieldmanager over sigs.k8s.io/structured-merge-diff:
//!
//! - every write records which manager owns which fields, as `FieldsV1` sets in entries keyed
//!   by manager, operation (`Apply` or `Update`), apiVersion (for `Update`) and subresource;
//! - an `Update` (create, update, patch) takes ownership of the fields it set or changed, from
//!   whoever owned them, and fields it removed leave every set;
//! - an `Apply` merges the applied configuration into the object, fails with conflicts where it
//!   changes a value another manager owns (unless forced, which moves the ownership), owns
//!   exactly the fields of its configuration, and removes the fields it applied before and no
//!   longer does, unless another manager owns them.
//!
//! List semantics come from the strategic-merge-patch metadata (see [`walk`]). Simplifications
//! against upstream: list-map keys are the single `patchMergeKey` (upstream keys container
//! ports by `containerPort` and `protocol`), and structs and maps are not told apart, so maps an
//! update adds below the top level are members (`"."`), as upstream's `map[string]string`s are.

mod changed;
pub mod fieldset;
mod memo;
mod stored;
mod walk;

use crate::meta::Fields as _;
use serde_json::{json, Map, Value};

use crate::status::{ApiError, Cause};
use crate::Resource;
pub use fieldset::{DisplayPath, FieldSet, PathElement};

/// Which part of an object a write may change, and so which fields its manager can own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Kinds without a status subresource: the whole object.
    All,
    /// The main resource of a kind with a status subresource: everything but `status`.
    Main,
    /// The status subresource: `status` only.
    Status,
}

/// A manager's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who writes: the manager name, the apiVersion it writes in and the subresource (`""` or
/// `"status"`).
#[derive(Debug, Clone, Copy)]
pub struct Manager<'a> {
    pub name: &'a str,
    pub api_version: &'a str,
    pub subresource: &'a str,
}

/// Why field management failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedError {
    #[error("invalid managedFields: {0}")]
    BadFieldsV1(String),
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
}

impl From<ManagedError> for ApiError {
    /// Conflicts are upstream's `NewApplyConflict` (409, a cause per field); malformed
    /// managedFields are 400.
    fn from(e: ManagedError) -> ApiError {
        match e {
            ManagedError::Conflicts(ref cs) => {
                let mut err = ApiError::new(409, "Conflict", e.to_string());
                err.details.causes = cs
                    .iter()
                    .map(|c| Cause {
                        reason: "FieldManagerConflict".into(),
                        message: format!("conflict with {}", c.manager),
                        field: c.path.clone(),
                    })
                    .collect();
                err
            }
            ManagedError::BadFieldsV1(_) => ApiError::bad_request(e.to_string()),
        }
    }
}

/// A field an apply would change that another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager as upstream prints it: `"name"`, with `with subresource "status"`
    /// and, for `Update` managers, `using apps/v1`.
    pub manager: String,
    /// The field, as `.spec.replicas`.
    pub path: String,
}

/// Upstream's `getConflictMessage`.
fn conflict_message(cs: &[Conflict]) -> String {
    if let [c] = cs {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.path
        );
    }
    let mut managers: Vec<&str> = cs.iter().map(|c| c.manager.as_str()).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for c in cs.iter().filter(|c| c.manager == m) {
            lines.push(format!("- {}", c.path));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        cs.len(),
        lines.join("\n")
    )
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    fn is(&self, m: &Manager, op: Operation) -> bool {
        self.manager == m.name
            && self.operation == op
            && self.subresource == m.subresource
            && (op == Operation::Apply || self.api_version == m.api_version)
    }

    /// The manager as conflicts name it (upstream's `printManager`).
    fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn from_value(v: &Value) -> Result<Entry, ManagedError> {
        let s = |k: &str| v.field(k).and_then(Value::as_str).unwrap_or("").to_string();
        let operation = match v.field("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => {
                return Err(ManagedError::BadFieldsV1(format!(
                    "unknown operation {other:?}"
                )))
            }
        };
        match v.field("fieldsType").and_then(Value::as_str) {
            Some("FieldsV1") | None => {}
            Some(t) => {
                return Err(ManagedError::BadFieldsV1(format!(
                    "unknown fieldsType {t:?}"
                )))
            }
        }
        let fields = match v.field("fieldsV1") {
            Some(f) if !f.is_null() => FieldSet::from_fields_v1(f)?,
            _ => FieldSet::new(),
        };
        Ok(Entry {
            manager: s("manager"),
            operation,
            api_version: s("apiVersion"),
            time: v.field("time").and_then(Value::as_str).map(str::to_string),
            subresource: s("subresource"),
            fields,
        })
    }

    fn to_value(&self) -> Value {
        entry_value(
            &self.manager,
            self.operation,
            &self.api_version,
            self.time.as_deref(),
            &self.subresource,
            self.fields.to_fields_v1(),
        )
    }
}

/// A `ManagedFieldsEntry` in upstream's key order.
fn entry_value(
    manager: &str,
    op: Operation,
    api_version: &str,
    time: Option<&str>,
    subresource: &str,
    fields: Value,
) -> Value {
    let mut m = Map::with_capacity(7);
    if !manager.is_empty() {
        m.insert("manager".into(), json!(manager));
    }
    m.insert("operation".into(), json!(op.as_str()));
    m.insert("apiVersion".into(), json!(api_version));
    if let Some(t) = time {
        m.insert("time".into(), json!(t));
    }
    m.insert("fieldsType".into(), json!("FieldsV1"));
    m.insert("fieldsV1".into(), fields);
    if !subresource.is_empty() {
        m.insert("subresource".into(), json!(subresource));
    }
    Value::Object(m)
}

/// `obj`'s `metadata.managedFields` (without [`Value::pointer`]'s allocations per step).
fn stored_list(obj: &Value) -> Option<&Value> {
    obj.field("metadata")?.field("managedFields")
}

/// The entries of `obj`'s `metadata.managedFields`.
pub fn entries(obj: &Value) -> Result<Vec<Entry>, ManagedError> {
    match stored_list(obj) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(Entry::from_value).collect(),
        Some(_) => Err(ManagedError::BadFieldsV1("expected a list".into())),
    }
}

fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let Some(m) = obj.field_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        m.shift_remove("managedFields");
    } else {
        m.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_value).collect()),
        );
    }
}

/// What a write says about managedFields, as upstream reads the request: absent or `[]` keeps
/// the stored ones; a list of only empty entries (`[{}]`) clears them; anything else replaces
/// them.
#[derive(Debug, PartialEq, Eq)]
pub enum Requested {
    Keep,
    Clear,
    Replace,
}

pub fn requested(obj: &Value) -> Requested {
    match stored_list(obj) {
        None | Some(Value::Null) => Requested::Keep,
        Some(Value::Array(a)) if a.is_empty() => Requested::Keep,
        Some(Value::Array(a)) if a.iter().all(|e| e.as_object().is_some_and(Map::is_empty)) => {
            Requested::Clear
        }
        Some(_) => Requested::Replace,
    }
}

/// The `managedFields` of an object created by `manager` (an `Update` owning every field),
/// built straight into `FieldsV1` without an intermediate set (or cloned from the last create
/// of the same shape, see [`memo`]).
pub fn created(res: &Resource, obj: &Value, scope: Scope, manager: &Manager, now: &str) -> Value {
    Value::Array(vec![memo::created_entry(res, obj, scope, manager, now)])
}

/// [`created`] as the JSON text it serializes to, appended to `out`, without building it as a
/// `Value` (a create that only stores and answers the text needs nothing else).
pub fn created_json(
    res: &Resource,
    obj: &Value,
    scope: Scope,
    manager: &Manager,
    now: &str,
    out: &mut Vec<u8>,
) {
    out.push(b'[');
    memo::created_entry_json(res, obj, scope, manager, now, out);
    out.push(b']');
}

/// Records an `Update` by `manager` from `old` to `new` in `new`'s managedFields (which start
/// from `old`'s unless the request set them, see [`requested`]): the manager takes the fields it
/// set or changed, removed fields leave every entry. `old` is `Value::Null` for a create.
/// Without a manager (the server's own writes, and applies, which record their own entry) the
/// entries are only carried over.
pub fn record_update(
    res: &Resource,
    old: &Value,
    new: &mut Value,
    scope: Scope,
    manager: Option<&Manager>,
    now: &str,
) -> Result<(), ManagedError> {
    record(res, old, new, scope, manager, now, true)
}

/// [`record_update`], on the stored entries when `in_place` allows (the decoding path alone is
/// what the equivalence tests compare against).
fn record(
    res: &Resource,
    old: &Value,
    new: &mut Value,
    scope: Scope,
    manager: Option<&Manager>,
    now: &str,
    in_place: bool,
) -> Result<(), ManagedError> {
    let req = requested(new);
    match req {
        Requested::Clear => {
            set_entries(new, &[]);
            return Ok(());
        }
        Requested::Keep => {
            let kept = stored_list(old).cloned();
            if let Some(m) = new.field_mut("metadata").and_then(Value::as_object_mut) {
                match kept {
                    Some(k) => m.insert("managedFields".into(), k),
                    None => m.shift_remove("managedFields"),
                };
            }
        }
        Requested::Replace => {}
    }
    let Some(m) = manager else {
        return Ok(());
    };
    let (changed, removed) = walk::diff_object(res, old, new, scope);
    if changed.is_empty() && removed.is_empty() {
        return Ok(());
    }
    if in_place && update_stored(new, &changed, &removed, m, now) {
        return Ok(());
    }
    update_decoded(new, req, &changed, &removed, m, now)
}

/// [`record_update`]'s bookkeeping over decoded entries, re-encoding every one of them.
fn update_decoded(
    new: &mut Value,
    req: Requested,
    changed: &FieldSet,
    removed: &FieldSet,
    m: &Manager,
    now: &str,
) -> Result<(), ManagedError> {
    let mut base = match req {
        Requested::Replace => entries(new)?,
        // Entries that do not decode are dropped, as upstream resets broken managedFields.
        _ => entries(new).unwrap_or_default(),
    };
    for e in &mut base {
        e.fields.remove_subtrees(removed);
        e.fields.remove_members(changed);
    }
    if !changed.is_empty() {
        match base.iter_mut().find(|e| e.is(m, Operation::Update)) {
            Some(e) => {
                e.fields.union_with(changed);
                e.time = Some(now.to_string());
            }
            None => base.push(Entry {
                manager: m.name.to_string(),
                operation: Operation::Update,
                api_version: m.api_version.to_string(),
                time: Some(now.to_string()),
                subresource: m.subresource.to_string(),
                fields: changed.clone(),
            }),
        }
    }
    base.retain(|e| !e.fields.is_empty());
    set_entries(new, &base);
    Ok(())
}

/// [`record_update`]'s bookkeeping done on the stored entries, with the same result as
/// [`update_decoded`]: when every entry is canonical (see [`stored`]), an entry the write does
/// not touch stays as it is, one that loses fields loses them in place, the manager's own entry
/// that already owns every changed field (and nothing else below the removed ones) only gets the
/// new `time`, and only the manager's entry, when it gains fields, is decoded and re-encoded.
/// Returns `false`, having changed nothing, when some entry is not canonical (so that the
/// decoding path reports or resets it).
fn update_stored(
    new: &mut Value,
    changed: &FieldSet,
    removed: &FieldSet,
    m: &Manager,
    now: &str,
) -> bool {
    let Some(meta) = new.field_mut("metadata").and_then(Value::as_object_mut) else {
        return false;
    };
    let list = match meta.field_mut("managedFields") {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => {
            if changed.is_empty() {
                meta.shift_remove("managedFields");
            } else {
                let entry = new_entry(changed, m, now);
                meta.insert("managedFields".into(), Value::Array(vec![entry]));
            }
            return true;
        }
        Some(_) => return false,
    };
    if !list.iter().all(stored::entry_is_canonical) {
        return false;
    }
    let own = if changed.is_empty() {
        None
    } else {
        list.iter().position(|e| stored::is_update_by(e, m))
    };
    // First decide and decode, then write, so that nothing is half-changed on the way out.
    let mut rewrite: Vec<(usize, Entry)> = Vec::new();
    let mut prune = Vec::new();
    let mut retime = None;
    for (i, e) in list.iter().enumerate() {
        let fields = stored::fields_v1(e);
        if Some(i) != own {
            if stored::touches(fields, changed, removed) {
                prune.push(i);
            }
            continue;
        }
        if e.field("time").is_some()
            && stored::contains_all(fields, changed)
            && stored::removed_are_changed(fields, removed, changed)
        {
            retime = Some(i);
            continue;
        }
        let Ok(mut entry) = Entry::from_value(e) else {
            return false;
        };
        entry.fields.remove_subtrees(removed);
        entry.fields.remove_members(changed);
        entry.fields.union_with(changed);
        entry.time = Some(now.to_string());
        rewrite.push((i, entry));
    }
    if let Some(i) = retime {
        list[i]["time"] = Value::String(now.to_string());
    }
    let mut emptied = false;
    for i in prune {
        let left = match list[i].field_mut("fieldsV1") {
            Some(Value::Object(fields)) => stored::remove_in_place(fields, removed, changed),
            _ => false,
        };
        if !left {
            list[i] = Value::Null;
            emptied = true;
        }
    }
    for (i, entry) in rewrite {
        if entry.fields.is_empty() {
            list[i] = Value::Null;
            emptied = true;
        } else {
            list[i] = entry.to_value();
        }
    }
    if emptied {
        list.retain(|e| !e.is_null());
    }
    if own.is_none() && !changed.is_empty() {
        list.push(new_entry(changed, m, now));
    }
    if list.is_empty() {
        meta.shift_remove("managedFields");
    }
    true
}

/// [`record_update`] for a write whose managedFields are kept as the JSON text `entries` (a
/// list of entries as this server writes them) and left out of `old` and `new`: the new
/// entries as text, without decoding the list into a tree and encoding it again. It covers the
/// common case of a manager's first write to fields nobody else owns (a kubelet's first status
/// write after a create): every entry canonical, none touched by the write, none of `m`'s own;
/// `m`'s new entry is then appended as text. When no entry owns anything in the top-level
/// fields the write changes (a status write after a create), the entry's `FieldsV1` is written
/// during the diff walk ([`changed::changed_fields_v1`]) without building the set. `None` for
/// anything else, which the caller hands to [`record_update`] with the entries decoded.
pub fn record_update_text(
    res: &Resource,
    old: &Value,
    new: &Value,
    scope: Scope,
    entries: &[u8],
    m: &Manager,
    now: &str,
) -> Option<Vec<u8>> {
    ENTRIES.with(|memo| {
        let mut memo = memo.try_borrow_mut().ok()?;
        let at = match memo.iter().position(|(text, _)| text.as_slice() == entries) {
            Some(i) => i,
            None => {
                let list = serde_json::from_slice::<Value>(entries)
                    .ok()
                    .filter(|l| matches!(l, Value::Array(a) if !a.is_empty() && a.iter().all(stored::entry_is_canonical)));
                if memo.len() >= ENTRY_TEXTS {
                    memo.remove(0);
                }
                memo.push((entries.to_vec(), list));
                memo.len() - 1
            }
        };
        let Some(Value::Array(list)) = &memo[at].1 else {
            return None;
        };
        // Top-level fields no entry owns anything in are fields the write can touch in no
        // entry: the changed set is then needed only as the new entry's text.
        let untouched = |k: &str| {
            list.iter().all(|e| {
                let fields = stored::fields_v1(e);
                !fields.keys().any(|f| f.strip_prefix("f:") == Some(k))
            })
        };
        let fields = match changed::changed_fields_v1(res, old, new, scope, untouched) {
            Some(text) => text,
            None => {
                let (changed, removed) = walk::diff_object(res, old, new, scope);
                if list
                    .iter()
                    .any(|e| stored::touches(stored::fields_v1(e), &changed, &removed))
                {
                    return None;
                }
                let mut text = Vec::with_capacity(256);
                changed.write_fields_v1(&mut text);
                text
            }
        };
        if fields == b"{}" {
            return Some(entries.to_vec());
        }
        if list.iter().any(|e| stored::is_update_by(e, m)) {
            return None;
        }
        if entries.last() != Some(&b']') {
            return None;
        }
        let mut out = Vec::with_capacity(entries.len() + fields.len() + 160);
        out.extend_from_slice(&entries[..entries.len() - 1]);
        out.push(b',');
        memo::entry_json(m, now, &fields, &mut out);
        out.push(b']');
        Some(out)
    })
}

/// How many entries texts [`ENTRIES`] remembers.
const ENTRY_TEXTS: usize = 4;

thread_local! {
    /// The last entries texts [`record_update_text`] read (the latest last), each decoded when
    /// every entry in it is canonical: the pods one controller creates in the same second share
    /// their entries, and a kubelet busy with the pods of one second meets some of the seconds
    /// around it between two of them.
    static ENTRIES: std::cell::RefCell<Vec<(Vec<u8>, Option<Value>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The entry of an `Update` by `m` that owns exactly `fields`.
fn new_entry(fields: &FieldSet, m: &Manager, now: &str) -> Value {
    entry_value(
        m.name,
        Operation::Update,
        m.api_version,
        Some(now),
        m.subresource,
        fields.to_fields_v1(),
    )
}

/// Server-side apply of configuration `config` by `manager` to `live` (`None` when the object
/// does not exist yet): the object to write, managedFields included. `force` takes conflicting
/// fields from their owners instead of failing.
pub fn apply(
    res: &Resource,
    live: Option<&Value>,
    config: &Value,
    scope: Scope,
    manager: &Manager,
    force: bool,
    now: &str,
) -> Result<Value, ManagedError> {
    let mut config_set = FieldSet::new();
    walk::object_fields(&mut config_set, res, config, scope, false);
    let Some(live) = live else {
        let mut obj = walk::strip_nulls(config);
        let entry = Entry {
            manager: manager.name.to_string(),
            operation: Operation::Apply,
            api_version: manager.api_version.to_string(),
            time: Some(now.to_string()),
            subresource: manager.subresource.to_string(),
            fields: config_set,
        };
        let entries = if entry.fields.is_empty() {
            Vec::new()
        } else {
            vec![entry]
        };
        if obj.field("metadata").is_none() {
            obj["metadata"] = json!({});
        }
        set_entries(&mut obj, &entries);
        return Ok(obj);
    };
    let mut merged = live.clone();
    walk::merge(res, &mut merged, &scoped(config, scope));
    let mut entries = entries(live).unwrap_or_default();
    let mine = entries.iter().position(|e| e.is(manager, Operation::Apply));
    // Conflicts: leaves another manager owns whose value the apply changes.
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) == mine {
            continue;
        }
        let shared = e.fields.intersection(&config_set);
        let mut lost = FieldSet::new();
        for p in shared.members() {
            if matches!(p.last(), Some(PathElement::Key(_) | PathElement::Value(_))) {
                continue;
            }
            let after = walk::value_at(&merged, &p);
            if after.is_some_and(|v| v.as_object().is_some_and(|m| !m.is_empty())) {
                continue;
            }
            if walk::value_at(live, &p) != after {
                conflicts.push(Conflict {
                    manager: e.display(),
                    path: DisplayPath(&p).to_string(),
                });
                lost.insert(&p);
            }
        }
        if force {
            e.fields.remove_members(&lost);
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ManagedError::Conflicts(conflicts));
    }
    // Fields this manager applied before and no longer does go, unless someone else owns them.
    let previous = mine.map(|i| entries[i].fields.clone()).unwrap_or_default();
    let dropped = previous.difference(&config_set);
    if !dropped.is_empty() {
        let mut others = FieldSet::new();
        for (i, e) in entries.iter().enumerate() {
            if Some(i) != mine {
                others.union_with(&e.fields);
            }
        }
        others.union_with(&config_set);
        // Children before parents, so that an emptied item or map goes after its fields.
        for p in dropped.members().iter().rev() {
            if !others.has_at_or_below(p) {
                walk::remove_at(&mut merged, p);
            }
        }
    }
    let entry = Entry {
        manager: manager.name.to_string(),
        operation: Operation::Apply,
        api_version: manager.api_version.to_string(),
        time: Some(now.to_string()),
        subresource: manager.subresource.to_string(),
        fields: config_set,
    };
    match mine {
        Some(i) => {
            if entries[i].fields != entry.fields || entries[i].api_version != entry.api_version {
                entries[i] = entry;
            }
        }
        None => entries.push(entry),
    }
    entries.retain(|e| !e.fields.is_empty());
    set_entries(&mut merged, &entries);
    Ok(merged)
}

/// The part of an applied configuration a write of `scope` may change.
fn scoped(config: &Value, scope: Scope) -> Value {
    let Value::Object(m) = config else {
        return config.clone();
    };
    Value::Object(
        m.iter()
            .filter(|(k, _)| match scope {
                Scope::All => true,
                Scope::Main => k.as_str() != "status",
                Scope::Status => k.as_str() == "status",
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}
