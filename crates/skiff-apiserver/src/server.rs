//! The API server's request path: authentication check, routing, content negotiation, and the
//! handlers of each verb and subresource over the generic storage path in [`crate::objects`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use serde_json::{json, Value};
use skiff_core::meta::Fields as _;
use skiff_core::registry::{self, Resource};
use skiff_core::{meta, ApiError, FieldError};
use skiff_store::DynStore;

use crate::codec::{self, Accept};
use crate::discovery;
use crate::fieldvalidation::{self, Directive, SchemaKind};
use crate::list::{self, list_meta};
use crate::metrics::{Metrics, RequestLabels, VerbLabels};
use crate::objects::{DeleteOptions, Deleted, Edit, UpdateMode};
use crate::request::{self, DiscoveryPath, Query, ResourceRequest, Target, Verb};
use crate::{Body, Handler, UserInfo};

/// The Kubernetes version Skiff serves.
pub const KUBERNETES_VERSION: &str = "v1.32.4";

/// Settings of the API server.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// `host:port` clients reach this server at (reported in `/api`).
    pub server_address: String,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// The base of the random default watch timeout.
    pub min_request_timeout: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            server_address: "127.0.0.1:6443".into(),
            bookmark_interval: Duration::from_secs(60),
            min_request_timeout: Duration::from_secs(1800),
        }
    }
}

/// The API server.
pub struct ApiServer {
    pub(crate) store: DynStore,
    pub(crate) opts: ApiOptions,
    pub(crate) metrics: Metrics,
    /// Serializes Service address allocation with the write that records it.
    pub(crate) service_alloc: tokio::sync::Mutex<()>,
    /// The custom resources served (CustomResourceDefinitions).
    pub(crate) crds: crate::crds::CustomResources,
    /// Objects just written by in-process writers, for the next write's read.
    pub(crate) recent: crate::recent::Recent,
    /// Whether each namespace was terminating, by the revision of its stored object: every
    /// create checks its namespace, and the stored namespace changes rarely.
    pub(crate) namespace_states: parking_lot::Mutex<foldhash::HashMap<String, (i64, bool)>>,
    /// Whether pods created without a node are kept decoded for the in-process scheduler's
    /// binding (set when it runs).
    keep_pending_pods: AtomicBool,
    ready: AtomicBool,
    started: Instant,
}

/// The namespaces that exist from the start.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl ApiServer {
    pub fn new(store: DynStore, opts: ApiOptions) -> Arc<ApiServer> {
        Arc::new(ApiServer {
            store,
            opts,
            metrics: Metrics::default(),
            service_alloc: tokio::sync::Mutex::new(()),
            crds: Default::default(),
            recent: Default::default(),
            namespace_states: Default::default(),
            keep_pending_pods: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            started: Instant::now(),
        })
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// Creates the system namespaces, starts the server's own lifecycle loops (namespace
    /// deletion, garbage collection) and marks the server ready.
    pub async fn bootstrap(self: &Arc<Self>) -> Result<(), ApiError> {
        let ns = registry::lookup("", "v1", "namespaces").expect("namespaces");
        for name in SYSTEM_NAMESPACES {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}});
            match self.create_object(ns, None, obj, false).await {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        self.ensure_kubernetes_service().await?;
        crate::priority::ensure_system_classes(self).await?;
        self.load_crds().await?;
        crate::crds::start(self.clone());
        crate::lifecycle::start(self.clone());
        self.ready.store(true, Ordering::SeqCst);
        tracing::info!(
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "api server ready"
        );
        Ok(())
    }

    /// The `kubernetes` Service in `default` and its Endpoints: how pods find the API server.
    async fn ensure_kubernetes_service(&self) -> Result<(), ApiError> {
        let (host, port) = self
            .opts
            .server_address
            .rsplit_once(':')
            .map(|(h, p)| {
                (
                    h.trim_matches(['[', ']']).to_string(),
                    p.parse::<i64>().unwrap_or(6443),
                )
            })
            .unwrap_or_else(|| ("127.0.0.1".into(), 6443));
        let svc = registry::lookup("", "v1", "services").expect("services");
        if self.read(svc, Some("default"), "kubernetes").await.is_ok() {
            return Ok(());
        }
        let obj = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": crate::services::KUBERNETES_SERVICE_IP,
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}
        });
        match self.create_object(svc, Some("default"), obj, false).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
        // Its Endpoints name the address pods reach the API server at; upstream refuses
        // loopback there, so a server listening on loopback only publishes none (the node
        // agent's address takes its place once there is one).
        let Ok(ip) = host.parse::<std::net::IpAddr>() else {
            return Ok(());
        };
        if ip.is_loopback() || ip.is_unspecified() {
            return Ok(());
        }
        let ep = registry::lookup("", "v1", "endpoints").expect("endpoints");
        let obj = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip.to_string()}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
        });
        match self.create_object(ep, Some("default"), obj, false).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Keeps pods created over the API without a node decoded for the next write of each,
    /// the in-process scheduler's binding (which then needs no parse of the stored pod).
    /// The scheduler turns this on when it starts.
    pub fn set_keep_pending_pods(&self, on: bool) {
        self.keep_pending_pods.store(on, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Answers one request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
        user: Option<UserInfo>,
    ) -> Response<Body> {
        let start = Instant::now();
        let path = req.uri().path().to_string();
        let query = Query::parse(req.uri().query());
        let method = req.method().clone();
        if method == http::Method::POST {
            if let Some(review) = crate::reviews::Review::from_path(&path) {
                return match &user {
                    Some(u) => crate::reviews::answer(review, req, u).await,
                    None => codec::error_response(&ApiError::unauthorized()),
                };
            }
        }
        let custom = |g: &str, v: &str, p: &str| self.crds.lookup(g, v, p);
        let target = match request::parse_with(&method, &path, &query, &custom) {
            Ok(t) => t,
            Err(e) => return codec::error_response(&e),
        };
        // Anonymous requests are refused everywhere, health included, as with
        // `--anonymous-auth=false` (k3s's setting).
        if user.is_none() {
            return codec::error_response(&ApiError::unauthorized());
        }
        if let Target::Other(p) = &target {
            match p.as_str() {
                "/version" | "/version/" => return version_response(),
                "/healthz" | "/livez" | "/readyz" | "/healthz/ping" | "/livez/ping"
                | "/readyz/ping" => {
                    return self.health(p);
                }
                _ => {}
            }
        }
        // Metric labels: static strings, so counting a request allocates nothing.
        let (verb_label, resource_label, sub_label): (&'static str, &'static str, &'static str) =
            match &target {
                Target::Resource(r) => (
                    r.verb.upper(),
                    r.resource.plural,
                    r.subresource
                        .as_deref()
                        .and_then(|s| r.resource.subresource(s))
                        .map_or("", |s| s.name),
                ),
                _ => ("OTHER", "", ""),
            };
        let is_watch = matches!(&target, Target::Resource(r) if r.verb == Verb::Watch);
        // Warnings recorded while serving (field validation, …) become Warning headers.
        // Boxed: the routing future is kilobytes (it holds every verb's state), and boxing
        // it once keeps this future, and each layer that moves it, small.
        let routed = Box::pin(self.route(req, target, query));
        let (resp, warnings) = crate::warnings::scope(routed).await;
        let mut resp = match resp {
            Ok(r) => r,
            Err(e) => codec::error_response(&e),
        };
        crate::warnings::attach(&mut resp, &warnings);
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                verb: verb_label,
                resource: resource_label,
                subresource: sub_label,
                code: resp.status().as_u16(),
            })
            .inc();
        if !is_watch {
            self.metrics
                .latency
                .get_or_create(&VerbLabels {
                    verb: verb_label,
                    resource: resource_label,
                    subresource: sub_label,
                })
                .observe(start.elapsed().as_secs_f64());
        }
        resp
    }

    fn health(&self, path: &str) -> Response<Body> {
        let ok = !path.starts_with("/readyz") || self.is_ready();
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(codec::full(if ok { "ok" } else { "[-]not ready" }))
            .expect("response")
    }

    async fn route(
        self: &Arc<Self>,
        req: Request<hyper::body::Incoming>,
        target: Target,
        query: Query,
    ) -> Result<Response<Body>, ApiError> {
        match target {
            Target::Other(p) => match p.as_str() {
                "/metrics" => Ok(Response::builder()
                    .header(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )
                    .body(codec::full(self.metrics.encode()))
                    .expect("response")),
                "/openapi/v3" | "/openapi/v3/" => Ok(codec::value_response(
                    StatusCode::OK,
                    &crate::openapi::index_with(&self.crds.snapshot()),
                    Accept::Json,
                )),
                "/openapi/v2" | "/openapi/v2/" => Ok(crate::openapi_v2::response(req.headers())),
                p if p.starts_with("/openapi/v3/") => {
                    let custom = self.crds.snapshot();
                    match crate::openapi::document_with(&custom, &p["/openapi/v3/".len()..]) {
                        Some(doc) => Ok(Response::builder()
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(codec::full(doc))
                            .expect("response")),
                        None => Err(ApiError::new(
                            404,
                            "NotFound",
                            "the server could not find the requested resource",
                        )),
                    }
                }
                "/" => Ok(codec::value_response(
                    StatusCode::OK,
                    &json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/readyz", "/version"]}),
                    Accept::Json,
                )),
                _ => Err(ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            },
            Target::Discovery(d) => self.discovery(&req, d),
            Target::Resource(r) => self.resource(req, r, query).await,
        }
    }

    fn discovery(
        &self,
        req: &Request<hyper::body::Incoming>,
        d: DiscoveryPath,
    ) -> Result<Response<Body>, ApiError> {
        let accept = req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let not_found = || {
            ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        };
        let custom = self.crds.snapshot();
        let aggregated = |core: bool| -> Option<Response<Body>> {
            let v = discovery::wants_aggregated(accept)?;
            let media = if v == "v2" {
                discovery::AGGREGATED_V2
            } else {
                discovery::AGGREGATED_V2BETA1
            };
            let mut body =
                serde_json::to_vec(&discovery::aggregated(core, v, &custom)).expect("json");
            body.push(b'\n');
            // An ETag, as upstream serves: clients' HTTP caches revalidate with it, and it
            // changes whenever a CRD changes what is served.
            let etag = discovery::etag(&body);
            let fresh = req
                .headers()
                .get(http::header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() == etag);
            let b = Response::builder()
                .header(http::header::CONTENT_TYPE, media)
                .header(http::header::VARY, "Accept")
                .header(http::header::ETAG, &etag);
            Some(if fresh {
                b.status(StatusCode::NOT_MODIFIED)
                    .body(codec::full(bytes::Bytes::new()))
                    .expect("response")
            } else {
                b.body(codec::full(body)).expect("response")
            })
        };
        let v = match d {
            DiscoveryPath::Api => {
                if let Some(r) = aggregated(true) {
                    return Ok(r);
                }
                discovery::api_versions(&self.opts.server_address)
            }
            DiscoveryPath::Apis => {
                if let Some(r) = aggregated(false) {
                    return Ok(r);
                }
                discovery::api_group_list(&custom)
            }
            DiscoveryPath::Group(g) => discovery::api_group(&g, &custom).ok_or_else(not_found)?,
            DiscoveryPath::GroupVersion(g, v) => {
                discovery::api_resource_list(&g, &v, &custom).ok_or_else(not_found)?
            }
        };
        Ok(codec::value_response(StatusCode::OK, &v, Accept::Json))
    }

    async fn resource(
        self: &Arc<Self>,
        req: Request<hyper::body::Incoming>,
        r: ResourceRequest,
        q: Query,
    ) -> Result<Response<Body>, ApiError> {
        let accept = codec::negotiate(req.headers())?;
        let res = r.resource;
        if let Some(w) = res.custom.and_then(|c| c.deprecation_warning.as_deref()) {
            crate::warnings::add(w);
        }
        let ns = r.namespace.as_deref();
        let dry_run = q.all("dryRun").contains(&"All");
        if let Some(v) = q.get("dryRun") {
            if !v.is_empty() && v != "All" {
                return Err(ApiError::bad_request(format!("Invalid dry run value: {v}")));
            }
        }
        // Verbs other than create, get and list run boxed, so their state does not make the
        // common requests' futures bigger (every move of a future copies all of it).
        if let Some(sub) = r.subresource.as_deref() {
            return Box::pin(self.subresource(req, &r, sub, q, accept, dry_run)).await;
        }
        match r.verb {
            Verb::Get => {
                let name = r.name.as_deref().unwrap_or_default();
                let sres = crate::objects::storage_resource(res);
                if accept == Accept::Json && sres.group == res.group && res.custom.is_none() {
                    // Served straight from the stored bytes.
                    let key = sres.key(ns, name);
                    let (kv, _) = self
                        .store
                        .get(&key, skiff_store::ReadAt::Latest)
                        .await
                        .map_err(|e| crate::objects::store_error(res, name, e))?;
                    let kv = kv.ok_or_else(|| ApiError::not_found(res, name))?;
                    return Ok(codec::json_response(
                        StatusCode::OK,
                        meta::inject_resource_version(&kv.value, kv.mod_revision),
                    ));
                }
                let (obj, _) = self.read(sres, ns, name).await.map_err(|e| {
                    if e.code == 404 {
                        ApiError::not_found(res, name)
                    } else {
                        e
                    }
                })?;
                let obj = crate::objects::to_external(res, obj);
                Ok(self.object_response(StatusCode::OK, res, &obj, accept))
            }
            Verb::List => {
                let table = matches!(accept, Accept::Table(_));
                let l = self
                    .list_objects(res, ns, &q, table || accept == Accept::Yaml)
                    .await?;
                if table {
                    let objs = l.decoded.as_deref().unwrap_or_default();
                    let include = include_object(&q)?;
                    let t = skiff_core::table::table(
                        res,
                        objs,
                        jiff::Timestamp::now(),
                        include,
                        list_meta(&l),
                    );
                    return Ok(codec::value_response(StatusCode::OK, &t, Accept::Json));
                }
                if accept == Accept::Yaml {
                    let v: Value =
                        serde_json::from_slice(&list::write_list(res, &l)).expect("json");
                    return Ok(codec::value_response(StatusCode::OK, &v, accept));
                }
                Ok(codec::json_response(
                    StatusCode::OK,
                    list::write_list(res, &l),
                ))
            }
            Verb::Watch => Box::pin(self.watch(res, r.namespace.clone(), &q, accept)).await,
            Verb::Create => {
                let manager = field_manager(&q, req.headers());
                let fv = Directive::from_query(&q, "CreateOptions")?;
                let body = self.read_object_body(req, res.into(), fv).await?;
                crate::crds::check_unknown_body(res, &body, fv)?;
                let same_form = crate::objects::storage_resource(res).group == res.group
                    && res.custom.is_none();
                // A JSON answer is the stored bytes: the object itself may be kept.
                let keep = if matches!(accept, Accept::Json)
                    && same_form
                    && self.keep_pending_pods.load(Ordering::Relaxed)
                {
                    crate::recent::Keep::PendingPods
                } else {
                    crate::recent::Keep::No
                };
                let created = self
                    .create_stored(res, ns, body, dry_run, Some(&manager), keep)
                    .await?;
                match (accept, created.revision) {
                    // The common case: answer with the stored bytes, resourceVersion spliced in.
                    (Accept::Json, Some(rev)) if same_form => Ok(codec::json_response(
                        StatusCode::CREATED,
                        meta::inject_resource_version(&created.bytes, rev),
                    )),
                    _ => {
                        let obj = created.into_external(res);
                        Ok(self.object_response(StatusCode::CREATED, res, &obj, accept))
                    }
                }
            }
            Verb::Update => {
                let name = r.name.as_deref().unwrap_or_default();
                let manager = field_manager(&q, req.headers());
                let fv = Directive::from_query(&q, "UpdateOptions")?;
                let body = self.read_object_body(req, res.into(), fv).await?;
                crate::crds::check_unknown_body(res, &body, fv)?;
                let (obj, created) = Box::pin(self.update_object(
                    res,
                    ns,
                    name,
                    body,
                    UpdateMode::Main,
                    dry_run,
                    Some(&manager),
                ))
                .await?;
                let code = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                Ok(self.object_response(code, res, &obj, accept))
            }
            Verb::Patch => {
                let name = r.name.as_deref().unwrap_or_default().to_string();
                let opts = PatchOptions::from_request(&q, req.headers())?;
                let (parts, body) = codec::read_request(req).await?;
                let ct = codec::content_type(&parts.headers);
                let (obj, code) = Box::pin(self.patch(
                    res,
                    ns,
                    &name,
                    &ct,
                    &body,
                    UpdateMode::Main,
                    dry_run,
                    &opts,
                ))
                .await?;
                Ok(self.object_response(code, res, &obj, accept))
            }
            Verb::Delete => {
                let name = r.name.as_deref().unwrap_or_default().to_string();
                let opts = self.delete_options(req, &q, dry_run).await?;
                match Box::pin(self.delete_object(res, ns, &name, &opts)).await? {
                    Deleted::Pending(obj) => {
                        Ok(self.object_response(StatusCode::OK, res, &obj, accept))
                    }
                    Deleted::Now(obj) => {
                        let mut details = serde_json::Map::new();
                        details.insert("name".into(), json!(name));
                        if !res.group.is_empty() {
                            details.insert("group".into(), json!(res.group));
                        }
                        details.insert("kind".into(), json!(res.plural));
                        details.insert("uid".into(), json!(meta::uid(&obj)));
                        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
                        if crate::objects::returns_deleted_object(res) {
                            return Ok(self.object_response(StatusCode::OK, res, &obj, accept));
                        }
                        Ok(codec::value_response(StatusCode::OK, &status, accept))
                    }
                }
            }
            Verb::DeleteCollection => {
                let opts = self.delete_options(req, &q, dry_run).await?;
                let l = self.list_objects(res, ns, &q, true).await?;
                let mut deleted = Vec::new();
                for obj in l.decoded.unwrap_or_default() {
                    let name = meta::name(&obj).to_string();
                    let ons = meta::namespace(&obj).to_string();
                    let ons = if res.namespaced {
                        Some(ons.as_str())
                    } else {
                        None
                    };
                    match self.delete_object(res, ons, &name, &opts).await {
                        Ok(Deleted::Now(o)) | Ok(Deleted::Pending(o)) => deleted.push(o),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                let out = json!({
                    "kind": res.list_kind(), "apiVersion": res.api_version(),
                    "metadata": {"resourceVersion": self.store.current_revision().to_string()},
                    "items": deleted
                });
                Ok(codec::value_response(StatusCode::OK, &out, accept))
            }
        }
    }

    /// The response for one object: JSON, YAML, or a one-row Table.
    fn object_response(
        &self,
        status: StatusCode,
        res: &Resource,
        obj: &Value,
        accept: Accept,
    ) -> Response<Body> {
        if let Accept::Table(_) = accept {
            let t = skiff_core::table::table(
                res,
                std::slice::from_ref(obj),
                jiff::Timestamp::now(),
                skiff_core::table::IncludeObject::Metadata,
                json!({"resourceVersion": meta::resource_version(obj)}),
            );
            return codec::value_response(status, &t, Accept::Json);
        }
        codec::value_response(status, obj, accept)
    }

    /// Reads and decodes a create or update body, applying field validation against `schema`
    /// (unknown fields are removed; see `crate::fieldvalidation`).
    async fn read_object_body(
        &self,
        req: Request<hyper::body::Incoming>,
        schema: SchemaKind<'_>,
        fv: Directive,
    ) -> Result<Value, ApiError> {
        let ct = codec::content_type(req.headers());
        let (_, body) = codec::read_request(req).await?;
        if body.is_empty() {
            return Err(ApiError::bad_request("the body of the request was empty"));
        }
        let (mut obj, duplicates) = match ct.as_str() {
            "application/json"
            | "application/yaml"
            | "text/yaml"
            | "application/x-yaml"
            | "*/*"
            | codec::PROTOBUF => codec::decode_checked(&body, &ct)?,
            other => return Err(ApiError::unsupported_media_type(other)),
        };
        fieldvalidation::check_request_body(schema, &mut obj, &body, &ct, duplicates, fv)?;
        Ok(obj)
    }

    async fn delete_options(
        &self,
        req: Request<hyper::body::Incoming>,
        q: &Query,
        dry_run: bool,
    ) -> Result<DeleteOptions, ApiError> {
        let (parts, body) = codec::read_request(req).await?;
        let mut opts = if body.is_empty() {
            DeleteOptions::default()
        } else {
            DeleteOptions::from_value(&codec::decode(&body, &codec::content_type(&parts.headers))?)?
        };
        if let Some(g) = q.int("gracePeriodSeconds")? {
            opts.grace_period_seconds = Some(g);
        }
        if let Some(p) = q.get("propagationPolicy").filter(|p| !p.is_empty()) {
            opts.propagation_policy = Some(p.to_string());
        }
        if opts.propagation_policy.is_none() {
            match q.get("orphanDependents") {
                Some("true") => opts.propagation_policy = Some("Orphan".into()),
                Some("false") => opts.propagation_policy = Some("Background".into()),
                _ => {}
            }
        }
        opts.dry_run = opts.dry_run || dry_run;
        Ok(opts)
    }

    /// PATCH: JSON patch, JSON merge patch, strategic merge patch or server-side apply, retried
    /// on conflicts unless the patch names a resourceVersion. Answers 201 for an apply that
    /// created the object, 200 otherwise.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        content_type: &str,
        body: &[u8],
        mode: UpdateMode,
        dry_run: bool,
        opts: &PatchOptions,
    ) -> Result<(Value, StatusCode), ApiError> {
        let patch = decode_patch(content_type, body)?;
        if res.custom.is_some() && matches!(patch, Patch::Strategic(_)) {
            // Custom resources have no patch strategies (upstream answers the same).
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        opts.validate(&patch)?;
        let fv = opts.field_validation;
        if let Patch::Apply(config) = &patch {
            fieldvalidation::check_apply(res, config, body, fv)?;
            crate::crds::check_unknown_apply(res, config)?;
            return self
                .server_side_apply(res, ns, name, config, mode, dry_run, opts)
                .await;
        }
        let check = fieldvalidation::PatchCheck::new(&patch, body, fv);
        let obj = self
            .guaranteed_update_as(
                res,
                ns,
                name,
                mode,
                dry_run,
                Some(&opts.field_manager),
                |cur| {
                    let mut out = apply_patch(&patch, res, cur)?;
                    if let Some(check) = &check {
                        check.check(res.into(), &mut out)?;
                    }
                    crate::crds::check_unknown_patched(res, &out, fv)?;
                    let want = meta::resource_version(&out);
                    if !want.is_empty() && want != meta::resource_version(cur) {
                        return Err(ApiError::stale(res, name));
                    }
                    Ok(out)
                },
            )
            .await?;
        Ok((obj, StatusCode::OK))
    }

    /// Server-side apply (`application/apply-patch+yaml`): merges the configuration into the
    /// live object with field ownership (see `skiff_core::managed`), or creates the object
    /// from it when there is none.
    #[allow(clippy::too_many_arguments)]
    async fn server_side_apply(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        config: &Value,
        mode: UpdateMode,
        dry_run: bool,
        opts: &PatchOptions,
    ) -> Result<(Value, StatusCode), ApiError> {
        let config = crate::objects::check_kind(res, config.clone())?;
        let body_name = meta::name(&config);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let sres = crate::objects::storage_resource(res);
        let scope = crate::objects::managed_scope(sres, mode);
        let av = res.api_version();
        let manager = skiff_core::managed::Manager {
            name: &opts.field_manager,
            api_version: &av,
            subresource: if mode == UpdateMode::Status {
                "status"
            } else {
                ""
            },
        };
        let apply = |live: Option<&Value>| {
            skiff_core::managed::apply(
                res,
                live,
                &config,
                scope,
                &manager,
                opts.force,
                &meta::now_rfc3339(),
            )
            .map_err(ApiError::from)
        };
        for _ in 0..2 {
            let exists = match self.read(res, ns, name).await {
                Ok(_) => true,
                Err(e) if e.code == 404 => false,
                Err(e) => return Err(e),
            };
            if !exists {
                if mode != UpdateMode::Main {
                    return Err(ApiError::not_found(res, name));
                }
                let mut obj = apply(None)?;
                let m = meta::metadata_mut(&mut obj);
                m.insert("name".into(), json!(name));
                m.remove("resourceVersion");
                match self.create_object_as(res, ns, obj, dry_run, None).await {
                    Ok(obj) => return Ok((obj, StatusCode::CREATED)),
                    // Created meanwhile: apply to it.
                    Err(e) if e.code == 409 && e.reason == "AlreadyExists" => continue,
                    Err(e) => return Err(e),
                }
            }
            let want_rv = meta::resource_version(&config).to_string();
            let obj = self
                .guaranteed_update_as(res, ns, name, mode, dry_run, None, |cur| {
                    if !want_rv.is_empty() && want_rv != meta::resource_version(cur) {
                        return Err(ApiError::stale(res, name));
                    }
                    let mut out = apply(Some(cur))?;
                    meta::metadata_mut(&mut out).remove("resourceVersion");
                    Ok(out)
                })
                .await;
            match obj {
                Err(e) if e.code == 404 => continue,
                other => return other.map(|o| (o, StatusCode::OK)),
            }
        }
        Err(ApiError::conflict(
            res,
            name,
            "the object changed while being applied; please try again",
        ))
    }

    async fn subresource(
        self: &Arc<Self>,
        req: Request<hyper::body::Incoming>,
        r: &ResourceRequest,
        sub: &str,
        q: Query,
        accept: Accept,
        dry_run: bool,
    ) -> Result<Response<Body>, ApiError> {
        let res = r.resource;
        let ns = r.namespace.as_deref();
        let name = r.name.as_deref().unwrap_or_default().to_string();
        match (sub, r.verb) {
            ("status", Verb::Get) => {
                let (obj, _) = self.read(res, ns, &name).await?;
                let obj = crate::objects::to_external(res, obj);
                Ok(self.object_response(StatusCode::OK, res, &obj, accept))
            }
            ("status", Verb::Update) | ("finalize", Verb::Update) => {
                let mode = if sub == "status" {
                    UpdateMode::Status
                } else {
                    UpdateMode::Finalize
                };
                let manager = field_manager(&q, req.headers());
                let fv = Directive::from_query(&q, "UpdateOptions")?;
                let body = self.read_object_body(req, res.into(), fv).await?;
                crate::crds::check_unknown_body(res, &body, fv)?;
                let (obj, _) = self
                    .update_object(res, ns, &name, body, mode, dry_run, Some(&manager))
                    .await?;
                Ok(self.object_response(StatusCode::OK, res, &obj, accept))
            }
            ("status", Verb::Patch) => {
                let opts = PatchOptions::from_request(&q, req.headers())?;
                let (parts, body) = codec::read_request(req).await?;
                let ct = codec::content_type(&parts.headers);
                let (obj, _) = self
                    .patch(
                        res,
                        ns,
                        &name,
                        &ct,
                        &body,
                        UpdateMode::Status,
                        dry_run,
                        &opts,
                    )
                    .await?;
                Ok(self.object_response(StatusCode::OK, res, &obj, accept))
            }
            ("scale", Verb::Get) => {
                let (obj, _) = self.read(res, ns, &name).await?;
                Ok(codec::value_response(
                    StatusCode::OK,
                    &scale_for(res, &obj)?,
                    accept,
                ))
            }
            ("scale", Verb::Update) | ("scale", Verb::Patch) => {
                let (patch, body) = if r.verb == Verb::Patch {
                    let (parts, body) = codec::read_request(req).await?;
                    let ct = codec::content_type(&parts.headers);
                    let p = decode_patch(&ct, &body)?;
                    let fv = Directive::from_query(&q, "PatchOptions")?;
                    let check = fieldvalidation::PatchCheck::new(&p, &body, fv);
                    (Some((p, check)), Value::Null)
                } else {
                    let fv = Directive::from_query(&q, "UpdateOptions")?;
                    (None, self.read_object_body(req, SCALE, fv).await?)
                };
                let scale_res = ScaleResource;
                let obj = self
                    .guaranteed_update(res, ns, &name, UpdateMode::Main, dry_run, |cur| {
                        let scale = scale_for(res, cur)?;
                        let wanted = match &patch {
                            Some((p, check)) => {
                                let mut w = apply_patch(p, res, &scale)?;
                                if let Some(check) = check {
                                    check.check(SCALE, &mut w)?;
                                }
                                w
                            }
                            None => body.clone(),
                        };
                        let rv = meta::resource_version(&wanted);
                        if !rv.is_empty() && rv != meta::resource_version(cur) {
                            return Err(ApiError::stale(res, &name));
                        }
                        let replicas = wanted
                            .pointer("/spec/replicas")
                            .cloned()
                            .unwrap_or(json!(0));
                        let Some(n) = replicas.as_i64() else {
                            return Err(scale_res.invalid(
                                &name,
                                FieldError::invalid(
                                    "spec.replicas",
                                    replicas,
                                    "must be an integer",
                                ),
                            ));
                        };
                        if n < 0 {
                            return Err(scale_res.invalid(
                                &name,
                                FieldError::invalid(
                                    "spec.replicas",
                                    n,
                                    "must be greater than or equal to 0",
                                ),
                            ));
                        }
                        if n > i32::MAX as i64 {
                            return Err(scale_res.invalid(
                                &name,
                                FieldError::invalid(
                                    "spec.replicas",
                                    n,
                                    "must be less than or equal to 2147483647",
                                ),
                            ));
                        }
                        let mut next = cur.clone();
                        if let Some(paths) = res.custom.and_then(|c| c.scale.as_ref()) {
                            skiff_core::crd::set_replicas(paths, &mut next, n);
                            return Ok(next);
                        }
                        next.as_object_mut()
                            .expect("object")
                            .entry("spec")
                            .or_insert_with(|| json!({}));
                        next["spec"]["replicas"] = json!(n);
                        Ok(next)
                    })
                    .await?;
                Ok(codec::value_response(
                    StatusCode::OK,
                    &scale_for(res, &obj)?,
                    accept,
                ))
            }
            ("binding", Verb::Create) => {
                let (parts, body) = codec::read_request(req).await?;
                let body = codec::decode(&body, &codec::content_type(&parts.headers))?;
                let node = body
                    .pointer("/target/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if node.is_empty() {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        format!("Binding \"{name}\" is invalid: target.name: Required value"),
                    ));
                }
                let bname = meta::name(&body);
                if !bname.is_empty() && bname != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({bname}) does not match the name on the URL ({name})"
                    )));
                }
                self.bind_pod_uid(ns, &name, Some(meta::uid(&body)), &node, dry_run)
                    .await?;
                Ok(codec::value_response(
                    StatusCode::CREATED,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                    Accept::Json,
                ))
            }
            ("eviction", Verb::Create) => {
                let (parts, body) = codec::read_request(req).await?;
                let body = codec::decode(&body, &codec::content_type(&parts.headers))?;
                self.evict(res, ns.unwrap_or_default(), &name, &body, dry_run)
                    .await?;
                Ok(codec::value_response(
                    StatusCode::CREATED,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                    Accept::Json,
                ))
            }
            _ => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({}/{sub})",
                res.plural
            ))),
        }
    }

    /// Binds a pod to a node (the pods/binding subresource): sets `spec.nodeName` and the
    /// PodScheduled condition; 409 when the pod is already bound or being deleted.
    pub async fn bind_pod(
        &self,
        ns: Option<&str>,
        name: &str,
        node: &str,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        self.bind_pod_uid(ns, name, None, node, dry_run).await
    }

    /// [`Self::bind_pod`] with the Binding's `metadata.uid` as a precondition, as upstream's
    /// binding storage has it (and kube-scheduler sends the pod's UID): a pod deleted and
    /// created again under the same name is not bound on the old one's decision (409). No UID,
    /// or an empty one, asks nothing.
    pub async fn bind_pod_uid(
        &self,
        ns: Option<&str>,
        name: &str,
        uid: Option<&str>,
        node: &str,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let res = registry::lookup("", "v1", "pods").expect("pods");
        // The kubelet's status write reads the pod next: the bound pod is kept for it, and
        // for the informers, which then decode only its status and node name.
        let readers = |bound_of| crate::recent::Readers::Binding { bound_of };
        self.edit_internal_kept(res, ns, name, dry_run, readers, |cur| {
                if let Some(want) = uid.filter(|u| !u.is_empty()) {
                    let have = meta::uid(cur);
                    if want != have {
                        return Err(ApiError::conflict(
                            res,
                            name,
                            &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {have}"),
                        ));
                    }
                }
                if meta::is_deleting(cur) {
                    return Err(ApiError::conflict(
                        res,
                        name,
                        &format!("pod {name} is being deleted, cannot be assigned to a host"),
                    ));
                }
                let current = cur.at("spec").field("nodeName");
                // Mostly the spec has no node name yet, and gets one after its other members.
                let added = current.is_none();
                let current = current.and_then(Value::as_str).unwrap_or("");
                if !current.is_empty() {
                    return Err(ApiError::conflict(
                        res,
                        name,
                        &format!("pod {name} is already assigned to node \"{current}\""),
                    ));
                }
                // Only the node name and the status change: the stored text is the old one with
                // those written in.
                cur["spec"]["nodeName"] = json!(node);
                set_condition(cur, "PodScheduled", "True", None);
                Ok(if added {
                    &[("spec", Edit::Appended), ("status", Edit::Rewritten)]
                } else {
                    &[("spec", Edit::Rewritten), ("status", Edit::Rewritten)]
                })
            })
            .await
    }

    /// Eviction: a delete that respects PodDisruptionBudgets.
    pub async fn evict(
        &self,
        res: &'static Resource,
        ns: &str,
        name: &str,
        body: &Value,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let (pod, _) = self.read(res, Some(ns), name).await?;
        let bname = meta::name(body);
        if !bname.is_empty() && bname != name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let mut opts = match body.get("deleteOptions") {
            Some(o) if !o.is_null() => DeleteOptions::from_value(o)?,
            _ => DeleteOptions::default(),
        };
        opts.dry_run = opts.dry_run || dry_run;
        let phase = pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        // Pods that are not running can go regardless of budgets, as upstream.
        let terminal_or_pending =
            matches!(phase, "Succeeded" | "Failed" | "Pending") || meta::is_deleting(&pod);
        if !terminal_or_pending {
            let pdb_res = registry::lookup("policy", "v1", "poddisruptionbudgets").expect("pdb");
            let q = Query::default();
            let pdbs = self
                .list_objects(pdb_res, Some(ns), &q, true)
                .await?
                .decoded
                .unwrap_or_default();
            let matching: Vec<&Value> = pdbs
                .iter()
                .filter(|p| {
                    p.pointer("/spec/selector")
                        .and_then(|s| skiff_core::labels::Selector::from_label_selector(s).ok())
                        .is_some_and(|s| s.matches_object(&pod))
                })
                .collect();
            if matching.len() > 1 {
                return Err(ApiError::internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."));
            }
            if let Some(pdb) = matching.first() {
                let pdb_name = meta::name(pdb).to_string();
                let gen = int_at(pdb, "/metadata/generation");
                let observed = int_at(pdb, "/status/observedGeneration");
                let allowed = int_at(pdb, "/status/disruptionsAllowed");
                if observed < gen || allowed <= 0 {
                    let desired = int_at(pdb, "/status/desiredHealthy");
                    let current = int_at(pdb, "/status/currentHealthy");
                    let mut e = ApiError::too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    );
                    e.details.causes.push(skiff_core::status::Cause {
                        reason: "DisruptionBudget".into(),
                        message: if observed < gen {
                            format!("The disruption budget {pdb_name} is still being processed by the server.")
                        } else {
                            format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently")
                        },
                        field: String::new(),
                    });
                    e.details.retry_after_seconds = Some(10);
                    return Err(e);
                }
                if !dry_run {
                    let pod_name = name.to_string();
                    let now = meta::now_rfc3339();
                    self.guaranteed_update(pdb_res, Some(ns), &pdb_name, UpdateMode::Status, false, |cur| {
                        let allowed = int_at(cur, "/status/disruptionsAllowed");
                        if allowed <= 0 {
                            return Err(ApiError::too_many_requests("Cannot evict pod as it would violate the pod's disruption budget."));
                        }
                        let mut next = cur.clone();
                        next["status"]["disruptionsAllowed"] = json!(allowed - 1);
                        if !next["status"]["disruptedPods"].is_object() {
                            next["status"]["disruptedPods"] = json!({});
                        }
                        next["status"]["disruptedPods"][&pod_name] = json!(now);
                        Ok(next)
                    })
                    .await?;
                }
            }
        }
        self.delete_object(res, Some(ns), name, &opts).await?;
        Ok(())
    }
}

impl Handler for ApiServer {
    fn call(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
        user: Option<UserInfo>,
    ) -> BoxFuture<'static, Response<Body>> {
        Box::pin(self.handle(req, user))
    }
}

/// `GET /version`.
pub fn version_json() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": format!("{KUBERNETES_VERSION}+skiff"),
        "gitCommit": "skiff",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH })
    })
}

fn version_response() -> Response<Body> {
    codec::value_response(StatusCode::OK, &version_json(), Accept::Json)
}

fn include_object(q: &Query) -> Result<skiff_core::table::IncludeObject, ApiError> {
    use skiff_core::table::IncludeObject;
    match q.get("includeObject").unwrap_or("") {
        "" | "Metadata" => Ok(IncludeObject::Metadata),
        "Object" => Ok(IncludeObject::Object),
        "None" => Ok(IncludeObject::None),
        other => Err(ApiError::bad_request(format!(
            "unsupported includeObject value: {other}"
        ))),
    }
}

/// A decoded patch.
pub enum Patch {
    Json(json_patch::Patch),
    Merge(Value),
    /// `application/strategic-merge-patch+json`, applied with the kind's patch metadata.
    Strategic(Value),
    /// `application/apply-patch+yaml` (YAML or JSON): server-side apply of a configuration.
    Apply(Value),
}

/// The field manager of a write: the `fieldManager` query parameter, or else the User-Agent up
/// to its first `/` (upstream's `prefixFromUserAgent`, at most 128 bytes).
pub fn field_manager(q: &Query, headers: &http::HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let ua = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let prefix = ua.split('/').next().unwrap_or("");
    let mut end = prefix.len().min(128);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    prefix[..end].to_string()
}

/// The query options of a PATCH (upstream's `PatchOptions`).
pub struct PatchOptions {
    pub field_manager: String,
    /// Whether `fieldManager` was given (required for apply).
    pub explicit_manager: bool,
    pub force: bool,
    force_given: bool,
    /// The `fieldValidation` directive.
    pub field_validation: Directive,
}

impl PatchOptions {
    pub fn from_request(q: &Query, headers: &http::HeaderMap) -> Result<PatchOptions, ApiError> {
        let force = match q.get("force") {
            None => None,
            // Go's strconv.ParseBool, as upstream decodes query parameters (Python sends
            // `True`).
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Some(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False" | "") => Some(false),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid value for force: {other:?}"
                )))
            }
        };
        Ok(PatchOptions {
            field_manager: field_manager(q, headers),
            explicit_manager: q.get("fieldManager").is_some_and(|m| !m.is_empty()),
            force: force.unwrap_or(false),
            force_given: force.is_some(),
            field_validation: Directive::from_query(q, "PatchOptions")?,
        })
    }

    /// Upstream's `ValidatePatchOptions`.
    fn validate(&self, patch: &Patch) -> Result<(), ApiError> {
        let err = |field: &str, detail: &str| {
            ApiError::new(
                422,
                "Invalid",
                format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {detail}"),
            )
        };
        match patch {
            Patch::Apply(_) if !self.explicit_manager => Err(err(
                "fieldManager",
                "Required value: is required for apply patch",
            )),
            Patch::Apply(_) => Ok(()),
            _ if self.force_given => Err(err(
                "force",
                "Forbidden: may not be specified for non-apply patch",
            )),
            _ => Ok(()),
        }
    }
}

pub fn decode_patch(content_type: &str, body: &[u8]) -> Result<Patch, ApiError> {
    match content_type {
        "application/json-patch+json" => {
            let v = codec::decode_json(body)?;
            let p: json_patch::Patch = serde_json::from_value(v)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            Ok(Patch::Json(p))
        }
        "application/merge-patch+json" => {
            let v = codec::decode_json(body)?;
            if !v.is_object() {
                return Err(ApiError::bad_request("error decoding patch: a merge patch must be a JSON object"));
            }
            Ok(Patch::Merge(v))
        }
        "application/strategic-merge-patch+json" => {
            let v = codec::decode_json(body)?;
            if !v.is_object() {
                return Err(ApiError::bad_request("error decoding patch: a strategic merge patch must be a JSON object"));
            }
            Ok(Patch::Strategic(v))
        }
        "application/apply-patch+yaml" => {
            // YAML, of which JSON is a subset.
            let v = codec::decode(body, content_type)?;
            if !v.is_object() {
                return Err(ApiError::bad_request("error decoding patch: an apply configuration must be an object"));
            }
            Ok(Patch::Apply(v))
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {other})"),
        )),
    }
}

/// Applies a decoded patch to `cur`, an object of kind `res` (for the scale subresource, the
/// Scale of one: its fields carry no strategic metadata, so the parent's is harmless).
pub fn apply_patch(p: &Patch, res: &Resource, cur: &Value) -> Result<Value, ApiError> {
    let mut out = cur.clone();
    match p {
        Patch::Json(p) => {
            json_patch::patch(&mut out, p).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        Patch::Merge(m) => json_patch::merge(&mut out, m),
        // Field ownership needs the live managedFields: `ApiServer::patch` applies these.
        Patch::Apply(_) => {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml",
            ))
        }
        Patch::Strategic(m) => {
            // As upstream's interpretStrategicMergePatchError: malformed directives are 400,
            // a patch that does not fit the object 422.
            out = skiff_core::strategic::apply(res, cur, m).map_err(|e| {
                if e.is_bad_request() {
                    ApiError::bad_request(e.to_string())
                } else {
                    ApiError::new(422, "Invalid", e.to_string())
                }
            })?;
        }
    }
    if !out.is_object() {
        return Err(ApiError::bad_request(
            "the patched object must be a JSON object",
        ));
    }
    Ok(out)
}

/// The schema of the scale subresource's body.
const SCALE: SchemaKind<'static> = SchemaKind {
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
};

/// The autoscaling/v1 Scale of an object of `res` (a custom resource's from its scale paths).
fn scale_for(res: &Resource, obj: &Value) -> Result<Value, ApiError> {
    match res.custom.and_then(|c| c.scale.as_ref()) {
        Some(paths) => Ok(skiff_core::crd::scale_of(paths, obj)),
        None => scale_of(obj),
    }
}

/// The autoscaling/v1 Scale of a scalable object.
fn scale_of(obj: &Value) -> Result<Value, ApiError> {
    let selector = match obj.pointer("/spec/selector") {
        Some(s) if s.get("matchLabels").is_some() || s.get("matchExpressions").is_some() => {
            skiff_core::labels::Selector::from_label_selector(s)
                .ok()
                .map(|s| s.to_string())
                .unwrap_or_default()
        }
        Some(Value::Object(m)) => {
            // ReplicationController: a plain map.
            let mut pairs: Vec<String> = m
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect();
            pairs.sort();
            pairs.join(",")
        }
        _ => String::new(),
    };
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut md = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            md.insert(k.into(), v.clone());
        }
    }
    let mut status = serde_json::Map::new();
    status.insert("replicas".into(), json!(int_at(obj, "/status/replicas")));
    if !selector.is_empty() {
        status.insert("selector".into(), json!(selector));
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": md,
        "spec": {"replicas": int_at(obj, "/spec/replicas")},
        "status": status
    }))
}

struct ScaleResource;

impl ScaleResource {
    fn invalid(&self, name: &str, e: FieldError) -> ApiError {
        let mut err = ApiError::new(
            422,
            "Invalid",
            format!("Scale.autoscaling \"{name}\" is invalid: {e}"),
        );
        err.details.name = name.to_string();
        err.details.group = "autoscaling".into();
        err.details.kind = "Scale".into();
        err.details.causes.push(skiff_core::status::Cause {
            reason: e.kind.reason().into(),
            message: e.body(),
            field: e.field.clone(),
        });
        err
    }
}

/// The integer at a JSON pointer, or 0.
fn int_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// Sets a status condition (type, status) with transition time, as pod conditions are kept.
pub fn set_condition(obj: &mut Value, type_: &str, status: &str, reason: Option<&str>) {
    let now = meta::now_rfc3339();
    // Members found by name (meta::Fields), without hashing it as `entry` would.
    let o = obj.as_object_mut().expect("object");
    if !o.field("status").is_some_and(Value::is_object) {
        o.insert("status".into(), json!({}));
    }
    let st = o
        .field_mut("status")
        .and_then(Value::as_object_mut)
        .expect("status");
    if !st.field("conditions").is_some_and(Value::is_array) {
        st.insert("conditions".into(), json!([]));
    }
    let arr = st
        .field_mut("conditions")
        .and_then(Value::as_array_mut)
        .expect("conditions");
    let mut c =
        json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    match arr
        .iter_mut()
        .find(|c| c.field("type").and_then(Value::as_str) == Some(type_))
    {
        Some(existing) => {
            if existing.field("status").and_then(Value::as_str) != Some(status) {
                *existing = c;
            }
        }
        None => arr.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_of_deployment_and_rc() {
        let d = json!({"metadata": {"name": "web", "namespace": "d", "resourceVersion": "5"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(&d).unwrap();
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
        assert_eq!(s["metadata"]["resourceVersion"], "5");
        let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 1, "selector": {"b": "2", "a": "1"}}});
        assert_eq!(scale_of(&rc).unwrap()["status"]["selector"], "a=1,b=2");
    }

    #[test]
    fn patches() {
        let cur = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}});
        let res = registry::lookup_kind("v1", "ConfigMap").unwrap();
        let p = decode_patch(
            "application/merge-patch+json",
            br#"{"metadata":{"labels":{"a":null,"b":"2"}}}"#,
        )
        .unwrap();
        let out = apply_patch(&p, res, &cur).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        let p = decode_patch(
            "application/json-patch+json",
            br#"[{"op":"replace","path":"/spec/x","value":2}]"#,
        )
        .unwrap();
        assert_eq!(apply_patch(&p, res, &cur).unwrap()["spec"]["x"], 2);
        let p = decode_patch(
            "application/json-patch+json",
            br#"[{"op":"test","path":"/spec/x","value":9}]"#,
        )
        .unwrap();
        assert_eq!(apply_patch(&p, res, &cur).unwrap_err().code, 422);
        assert_eq!(
            decode_patch("application/merge-patch+json", b"[1]")
                .err()
                .unwrap()
                .code,
            400
        );
    }

    #[test]
    fn strategic_patches() {
        let pod = registry::lookup_kind("v1", "Pod").unwrap();
        let cur = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
        ]}});
        let p = decode_patch(
            "application/strategic-merge-patch+json",
            br#"{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"image":"a:2","name":"a"}]}}"#,
        )
        .unwrap();
        let out = apply_patch(&p, pod, &cur).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "a:2"}, {"name": "b", "image": "b:1"}])
        );
        let p = decode_patch(
            "application/strategic-merge-patch+json",
            br#"{"spec":{"containers":[{"image":"x"}]}}"#,
        )
        .unwrap();
        let err = apply_patch(&p, pod, &cur).unwrap_err();
        assert_eq!((err.code, err.reason), (422, "Invalid"));
        let p = decode_patch(
            "application/strategic-merge-patch+json",
            br#"{"spec":{"$setElementOrder/containers":"a"}}"#,
        )
        .unwrap();
        assert_eq!(apply_patch(&p, pod, &cur).unwrap_err().code, 400);
        let bad = decode_patch("application/strategic-merge-patch+json", b"[]");
        assert_eq!(bad.err().unwrap().code, 400);
    }
}
