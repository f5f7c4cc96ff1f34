#!/usr/bin/env python3
"""End to end: the official Kubernetes Python client against `skiff server --disable-agent`.

Mirrors the upstream kubernetes-client/python e2e tests (kubernetes/e2e_test: test_client,
test_watch, test_apps, test_batch, test_utils), adapted to a server without nodes or
containers: pods are only checked for their defaults and stay Pending.

Run:  SKIFF_BIN=target/debug/skiff .venv/bin/python tests/e2e/python_client.py
It starts its own server on a free loopback port with its data in a temporary directory,
always stops that server (by PID: terminate, then kill) and removes the directory. It prints
one line per check and ends with `N passed, M failed`; the exit status is non-zero on any
failure.
"""

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

# Only loopback traffic: never let an environment proxy get in the way.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

from kubernetes import client, config, utils, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from kubernetes.dynamic import DynamicClient  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIFF_BIN = os.environ.get("SKIFF_BIN", os.path.join(REPO, "target", "debug", "skiff"))
READY_TIMEOUT = float(os.environ.get("SKIFF_READY_TIMEOUT", "120"))

NS = "pyclient-e2e"          # namespace most checks run in
PAGE_NS = "pyclient-pages"   # namespace holding only the pagination configmaps
YAML_NS = "pyclient-yaml"    # namespace created by create_from_yaml

APISERVICE_CONFLICT_BODY = (
    '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
    '"message":"apiservices.apiregistration.k8s.io \\"v1alpha1.wardle.k8s.io\\" already exists",'
    '"reason":"AlreadyExists","details":{"name":"v1alpha1.wardle.k8s.io",'
    '"group":"apiregistration.k8s.io","kind":"apiservices"},"code":409}\n'
)

APISERVICE_YAML = """\
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1alpha1.wardle.k8s.io
spec:
  insecureSkipTLSVerify: true
  group: wardle.k8s.io
  groupPriorityMinimum: 1000
  versionPriority: 15
  service:
    name: api
    namespace: wardle
  version: v1alpha1
"""

MULTI_YAML = """\
apiVersion: v1
kind: Namespace
metadata:
  name: %(ns)s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  namespace: %(ns)s
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.15.4
        ports:
        - containerPort: 80
---
%(apiservice)s""" % {"ns": YAML_NS, "apiservice": APISERVICE_YAML}


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def expect_eq(actual, want, what):
    if actual != want:
        raise CheckFailed("%s: want %r, got %r" % (what, want, actual))


def short_uuid():
    return str(uuid.uuid4())[-12:]


def describe_api_exception(e):
    body = e.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    body = (body or "").strip()
    if len(body) > 600:
        body = body[:600] + "..."
    return "HTTP %s %s: %s" % (e.status, e.reason, body)


def expect_api_error(fn, status, reason):
    """Calls fn, which must raise ApiException with this status and a Status body with this
    reason. Returns (exception, parsed body)."""
    try:
        result = fn()
    except ApiException as e:
        expect_eq(e.status, status, "HTTP status (%s)" % describe_api_exception(e))
        try:
            body = json.loads(e.body)
        except Exception:
            raise CheckFailed("error body is not JSON: %r" % (e.body,))
        expect_eq(body.get("kind"), "Status", "body.kind")
        expect_eq(body.get("apiVersion"), "v1", "body.apiVersion")
        expect_eq(body.get("status"), "Failure", "body.status")
        expect_eq(body.get("reason"), reason, "body.reason")
        expect_eq(body.get("code"), status, "body.code")
        return e, body
    raise CheckFailed("expected HTTP %d %s, the call succeeded: %r" % (status, reason, result))


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, name, fn):
        try:
            fn()
        except CheckFailed as e:
            self._fail(name, str(e))
        except ApiException as e:
            self._fail(name, "unexpected " + describe_api_exception(e))
        except Exception as e:  # noqa: BLE001 - report anything as a failed check
            here = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__]
            where = " (line %d: %s)" % (here[-1].lineno, here[-1].line) if here else ""
            self._fail(name, "%s: %s%s" % (type(e).__name__, e, where))
        else:
            self.passed += 1
            print("ok   - %s" % name, flush=True)

    def _fail(self, name, detail):
        self.failed += 1
        self.failures.append(name)
        print("FAIL - %s" % name, flush=True)
        for line in detail.splitlines()[:20]:
            print("       %s" % line, flush=True)

    def summary(self):
        print()
        if self.failures:
            print("failed: %s" % "; ".join(self.failures))
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return self.failed == 0


# --- the server ---------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="skiff-pyclient.")
        self.kubeconfig = os.path.join(self.work, "kubeconfig")
        self.log_path = os.path.join(self.work, "server.log")
        self.proc = None
        self.api_client = None

    def start(self):
        self.port = free_port()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SKIFF_BIN, "server",
             "--data-dir", os.path.join(self.work, "data"),
             "--bind-address", "127.0.0.1",
             "--https-listen-port", str(self.port),
             "--disable-agent",
             "--write-kubeconfig", self.kubeconfig],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        last = "kubeconfig not written"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed("server exited with status %s; log:\n%s"
                                  % (self.proc.returncode, self.log_tail()))
            if os.path.exists(self.kubeconfig) and os.path.getsize(self.kubeconfig) > 0:
                try:
                    if self.api_client is None:
                        cfg = client.Configuration()
                        config.load_kube_config(config_file=self.kubeconfig, client_configuration=cfg)
                        self.api_client = client.ApiClient(configuration=cfg)
                    r = self.api_client.rest_client.pool_manager.request(
                        "GET", self.api_client.configuration.host + "/readyz",
                        timeout=2.0, retries=False)
                    if r.status == 200:
                        return
                    last = "/readyz answered %d: %r" % (r.status, r.data[:200])
                except Exception as e:  # noqa: BLE001 - keep polling
                    last = "%s: %s" % (type(e).__name__, e)
                    if "kubeconfig" in str(e).lower() or "config" in type(e).__name__.lower():
                        self.api_client = None
            time.sleep(0.1)
        raise CheckFailed("not ready after %.0fs (%s); log:\n%s" % (READY_TIMEOUT, last, self.log_tail()))

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


# --- fixtures -----------------------------------------------------------------------------

def config_map_with_value(name, value, labels=None):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {"e2e-tests": "true"}},
        "data": {"key": value, "config": "dummy"},
    }


def nginx_pod_template(labels):
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="nginx", image="nginx:1.15.4",
            ports=[client.V1ContainerPort(container_port=80)])]))


# --- checks -------------------------------------------------------------------------------

def run_checks(r, api_client, work):
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    batch = client.BatchV1Api(api_client)

    def version():
        v = client.VersionApi(api_client).get_code()
        expect_eq((v.major, v.minor), ("1", "32"), "version major/minor")
    r.check("VersionApi: /version reports 1.32", version)

    def list_namespaces():
        names = {ns.metadata.name for ns in core.list_namespace().items}
        for want in ("default", "kube-system"):
            expect(want in names, "namespace %s missing from %s" % (want, sorted(names)))
    r.check("CoreV1Api: list_namespace has default and kube-system", list_namespaces)

    def create_namespace():
        ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        expect_eq(ns.metadata.name, NS, "metadata.name")
        got = core.read_namespace(NS)
        expect_eq(got.status.phase, "Active", "status.phase")
        expect(got.metadata.uid, "metadata.uid is empty")
    r.check("CoreV1Api: create and read a namespace", create_namespace)

    # ConfigMaps, like upstream test_configmap_apis.
    def configmaps():
        name = "test-configmap-" + short_uuid()
        cm = {
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": name, "labels": {"e2e-test": "true"}},
            "data": {"config.json": '{"command":"/usr/bin/mysqld_safe"}',
                     "frontend.cnf": "[mysqld]\nbind-address = 10.0.0.3\n"},
        }
        resp = core.create_namespaced_config_map(body=cm, namespace=NS)
        expect_eq(resp.metadata.name, name, "created name")
        expect(resp.metadata.resource_version, "created resourceVersion is empty")

        resp = core.read_namespaced_config_map(name=name, namespace=NS)
        expect_eq(resp.data["frontend.cnf"], cm["data"]["frontend.cnf"], "read data")

        listed = core.list_namespaced_config_map(NS, label_selector="e2e-test=true")
        expect_eq([i.metadata.name for i in listed.items], [name], "label-selected list")
        expect(listed.metadata.resource_version, "list resourceVersion is empty")

        # JSON patch: a list body makes the client send application/json-patch+json.
        resp = core.patch_namespaced_config_map(
            name=name, namespace=NS,
            body=[{"op": "replace", "path": "/data/config.json", "value": "{}"}])
        expect_eq(resp.data["config.json"], "{}", "data after JSON patch")

        # Merge patch (a dict body alone would be sent as strategic merge patch).
        resp = core.patch_namespaced_config_map(
            name=name, namespace=NS,
            body={"data": {"extra": "yes", "frontend.cnf": None}, "metadata": {"labels": {"patched": "merge"}}},
            _content_type="application/merge-patch+json")
        expect_eq(resp.data, {"config.json": "{}", "extra": "yes"}, "data after merge patch")
        expect_eq(resp.metadata.labels, {"e2e-test": "true", "patched": "merge"}, "labels after merge patch")

        core.delete_namespaced_config_map(name=name, namespace=NS, body={})
        expect_api_error(lambda: core.read_namespaced_config_map(name=name, namespace=NS), 404, "NotFound")
        listed = core.list_namespaced_config_map(NS, label_selector="e2e-test=true")
        expect_eq(listed.items, [], "list after delete")
    r.check("CoreV1Api: configmap create/read/list -l/JSON patch/merge patch/delete", configmaps)

    # Services, like upstream test_service_apis.
    def services():
        name = "frontend-" + short_uuid()
        svc = {
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": name, "labels": {"name": name}},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 80}],
                     "selector": {"name": name}},
        }
        resp = core.create_namespaced_service(body=svc, namespace=NS)
        expect_eq(resp.metadata.name, name, "created name")
        expect_eq(resp.spec.type, "ClusterIP", "spec.type default")
        ip = resp.spec.cluster_ip
        expect(ip and ipaddress.ip_address(ip) in ipaddress.ip_network("10.43.0.0/16"),
               "spec.clusterIP %r not in 10.43.0.0/16" % (ip,))
        expect_eq(resp.spec.cluster_ips, [ip], "spec.clusterIPs")
        expect_eq(resp.spec.ports[0].protocol, "TCP", "ports[0].protocol default")

        resp = core.read_namespaced_service(name=name, namespace=NS)
        expect_eq(resp.spec.cluster_ip, ip, "clusterIP on read")

        resp = core.patch_namespaced_service(
            name=name, namespace=NS,
            body={"spec": {"ports": [{"name": "new", "port": 8080, "protocol": "TCP", "targetPort": 8080}]}},
            _content_type="application/merge-patch+json")
        expect_eq([(p.name, p.port) for p in resp.spec.ports], [("new", 8080)], "ports after merge patch")
        expect_eq(resp.spec.cluster_ip, ip, "clusterIP after patch")

        core.delete_namespaced_service(name=name, namespace=NS, body={})
        expect_api_error(lambda: core.read_namespaced_service(name=name, namespace=NS), 404, "NotFound")
    r.check("CoreV1Api: service create (ClusterIP in 10.43.0.0/16)/read/patch/delete", services)

    # ReplicationControllers, like upstream test_replication_controller_apis.
    def replication_controllers():
        name = "frontend-" + short_uuid()
        rc = {
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"labels": {"name": name}, "name": name},
            "spec": {
                "replicas": 2,
                "selector": {"name": name},
                "template": {"metadata": {"labels": {"name": name}},
                             "spec": {"containers": [{"image": "nginx", "name": "nginx",
                                                      "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}},
            },
        }
        resp = core.create_namespaced_replication_controller(body=rc, namespace=NS)
        expect_eq(resp.metadata.name, name, "created name")
        expect_eq(resp.spec.replicas, 2, "spec.replicas")
        resp = core.read_namespaced_replication_controller(name=name, namespace=NS)
        expect_eq(resp.spec.replicas, 2, "spec.replicas on read")
        names = [i.metadata.name for i in core.list_namespaced_replication_controller(NS).items]
        expect(name in names, "%s missing from list %s" % (name, names))
        core.delete_namespaced_replication_controller(name=name, namespace=NS, body={})
        names = [i.metadata.name for i in core.list_namespaced_replication_controller(NS).items]
        expect(name not in names, "%s still listed after delete" % name)
    r.check("CoreV1Api: replicationcontroller create/read/list/delete", replication_controllers)

    # Pods: no kubelet, so only the stored object and its defaults.
    def pods():
        name = "busybox-test-" + short_uuid()
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [{"image": "busybox", "name": "sleep",
                                     "args": ["/bin/sh", "-c", "while true;do date;sleep 5; done"]}]},
        }
        resp = core.create_namespaced_pod(body=pod, namespace=NS)
        expect_eq(resp.metadata.name, name, "created name")
        resp = core.read_namespaced_pod(name=name, namespace=NS)
        expect_eq(resp.spec.restart_policy, "Always", "spec.restartPolicy default")
        expect_eq(resp.spec.dns_policy, "ClusterFirst", "spec.dnsPolicy default")
        expect_eq(resp.spec.containers[0].image_pull_policy, "Always", "imagePullPolicy default for an untagged image")
        expect_eq(resp.status.phase, "Pending", "status.phase")
        core.delete_namespaced_pod(name=name, namespace=NS, body={})
    r.check("CoreV1Api: pod create/read with defaults (Always, ClusterFirst, Pending)/delete", pods)

    # Watch, like upstream test_watch.py (one object, so one DELETED).
    def watch_configmaps():
        selector = "pyclient-watch=" + short_uuid()
        labels = {"pyclient-watch": selector.split("=", 1)[1]}
        rv = core.list_namespaced_config_map(NS, label_selector=selector).metadata.resource_version
        expect(rv, "list resourceVersion is empty")
        name = "configmap-b-" + short_uuid()
        cm = config_map_with_value(name, "b", labels)
        core.create_namespaced_config_map(body=cm, namespace=NS)
        core.patch_namespaced_config_map(name=name, namespace=NS, body={"data": {"config": "{}"}},
                                         _content_type="application/merge-patch+json")
        core.delete_collection_namespaced_config_map(NS, label_selector=selector)

        w = watch.Watch()
        events = []
        start = time.monotonic()
        for event in w.stream(core.list_namespaced_config_map, NS, label_selector=selector,
                              resource_version=rv, timeout_seconds=5, _request_timeout=(5, 25)):
            events.append(event)
        elapsed = time.monotonic() - start
        types = [e["type"] for e in events]
        expect_eq(types, ["ADDED", "MODIFIED", "DELETED"], "event types")
        expect_eq({e["object"].metadata.name for e in events}, {name}, "event object names")
        expect_eq(events[1]["object"].data.get("config"), "{}", "MODIFIED object data")
        expect(3.0 <= elapsed < 15.0, "stream should end by itself at timeoutSeconds=5, took %.1fs" % elapsed)
    r.check("watch: replay from list RV with -l gives ADDED, MODIFIED, DELETED and ends at timeoutSeconds", watch_configmaps)

    # Apps, like upstream test_apps.py.
    def deployments():
        name = "nginx-deployment-" + short_uuid()
        dep = client.V1Deployment(
            api_version="apps/v1", kind="Deployment",
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1DeploymentSpec(
                replicas=3,
                selector=client.V1LabelSelector(match_labels={"app": name}),
                template=nginx_pod_template({"app": name})))
        resp = apps.create_namespaced_deployment(body=dep, namespace=NS)
        expect_eq(resp.metadata.name, name, "created name")
        resp = apps.read_namespaced_deployment(name=name, namespace=NS)
        expect_eq(resp.spec.strategy.type, "RollingUpdate", "spec.strategy.type default")
        expect_eq(resp.spec.strategy.rolling_update.max_surge, "25%", "maxSurge default")
        expect_eq(resp.spec.strategy.rolling_update.max_unavailable, "25%", "maxUnavailable default")
        expect_eq(resp.spec.revision_history_limit, 10, "revisionHistoryLimit default")
        expect_eq(resp.spec.progress_deadline_seconds, 600, "progressDeadlineSeconds default")
        apps.delete_namespaced_deployment(name=name, namespace=NS, body=client.V1DeleteOptions())
        expect_api_error(lambda: apps.read_namespaced_deployment(name=name, namespace=NS), 404, "NotFound")
    r.check("AppsV1Api: deployment create/read with defaults/delete with V1DeleteOptions", deployments)

    def daemonsets():
        name = "nginx-app-" + short_uuid()
        ds = {
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"labels": {"app": "nginx"}, "name": name},
            "spec": {
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}, "name": name},
                             "spec": {"containers": [{"name": "nginx-app", "image": "nginx:1.15.4"}]}},
                "updateStrategy": {"type": "RollingUpdate"},
            },
        }
        resp = apps.create_namespaced_daemon_set(body=ds, namespace=NS)
        expect_eq(resp.metadata.name, name, "created name")
        resp = apps.read_namespaced_daemon_set(name=name, namespace=NS)
        expect_eq(resp.metadata.name, name, "read name")
        expect_eq(resp.spec.update_strategy.type, "RollingUpdate", "updateStrategy.type")
        apps.delete_namespaced_daemon_set(name=name, namespace=NS, body=client.V1DeleteOptions())
        expect_api_error(lambda: apps.read_namespaced_daemon_set(name=name, namespace=NS), 404, "NotFound")
    r.check("AppsV1Api: daemonset create/read/delete with V1DeleteOptions", daemonsets)

    # Batch, like upstream test_batch.py.
    def jobs():
        name = "test-job-" + short_uuid()
        job = {
            "kind": "Job", "apiVersion": "batch/v1",
            "metadata": {"name": name},
            "spec": {"template": {"metadata": {"name": name},
                                  "spec": {"containers": [{"name": name, "image": "busybox",
                                                           "command": ["sh", "-c", "sleep 5"]}],
                                           "restartPolicy": "Never"}}},
        }
        resp = batch.create_namespaced_job(body=job, namespace=NS)
        expect_eq(resp.metadata.name, name, "created name")
        resp = batch.read_namespaced_job(name=name, namespace=NS)
        expect_eq(resp.metadata.name, name, "read name")
        batch.delete_namespaced_job(name=name, namespace=NS, propagation_policy="Background")
        expect_api_error(lambda: batch.read_namespaced_job(name=name, namespace=NS), 404, "NotFound")
    r.check("BatchV1Api: job create/read/delete with propagationPolicy=Background", jobs)

    # Errors.
    def not_found():
        _, body = expect_api_error(lambda: core.read_namespaced_config_map(name="does-not-exist", namespace=NS),
                                   404, "NotFound")
        expect_eq(body.get("message"), 'configmaps "does-not-exist" not found', "message")
        expect_eq(body.get("details"), {"name": "does-not-exist", "kind": "configmaps"}, "details")
    r.check("errors: missing object raises 404 with a NotFound Status", not_found)

    def already_exists():
        name = "dup-" + short_uuid()
        core.create_namespaced_config_map(body=config_map_with_value(name, "x"), namespace=NS)
        _, body = expect_api_error(
            lambda: core.create_namespaced_config_map(body=config_map_with_value(name, "x"), namespace=NS),
            409, "AlreadyExists")
        expect_eq(body.get("message"), 'configmaps "%s" already exists' % name, "message")
        core.delete_namespaced_config_map(name=name, namespace=NS)
    r.check("errors: duplicate create raises 409 AlreadyExists", already_exists)

    def conflict():
        name = "stale-" + short_uuid()
        core.create_namespaced_config_map(body=config_map_with_value(name, "1"), namespace=NS)
        stale = core.read_namespaced_config_map(name=name, namespace=NS)
        fresh = core.read_namespaced_config_map(name=name, namespace=NS)
        fresh.data["key"] = "2"
        updated = core.replace_namespaced_config_map(name=name, namespace=NS, body=fresh)
        expect(updated.metadata.resource_version != stale.metadata.resource_version,
               "replace did not change resourceVersion")
        stale.data["key"] = "3"
        _, body = expect_api_error(
            lambda: core.replace_namespaced_config_map(name=name, namespace=NS, body=stale), 409, "Conflict")
        expect("the object has been modified" in (body.get("message") or ""),
               "message %r" % body.get("message"))
        expect_eq(core.read_namespaced_config_map(name=name, namespace=NS).data["key"], "2", "data after conflict")
        core.delete_namespaced_config_map(name=name, namespace=NS)
    r.check("errors: replace with a stale resourceVersion raises 409 Conflict", conflict)

    # utils.create_from_yaml, like upstream test_utils.py.
    multi_path = os.path.join(work, "multi.yaml")
    with open(multi_path, "w") as f:
        f.write(MULTI_YAML)
    apiservice_path = os.path.join(work, "api-service.yaml")
    with open(apiservice_path, "w") as f:
        f.write(APISERVICE_YAML)
    reg = client.ApiregistrationV1Api(api_client)

    def create_from_yaml():
        created = utils.create_from_yaml(api_client, multi_path)
        expect_eq(len(created), 3, "number of created documents")
        expect_eq(core.read_namespace(YAML_NS).metadata.name, YAML_NS, "namespace")
        dep = apps.read_namespaced_deployment(name="nginx-deployment", namespace=YAML_NS)
        expect_eq(dep.spec.replicas, 3, "deployment replicas")
        svc = reg.read_api_service(name="v1alpha1.wardle.k8s.io")
        expect_eq(svc.metadata.name, "v1alpha1.wardle.k8s.io", "apiservice name")
        expect_eq(svc.spec.group, "wardle.k8s.io", "apiservice spec.group")
        expect_eq(svc.spec.version, "v1alpha1", "apiservice spec.version")
        expect_eq(svc.spec.group_priority_minimum, 1000, "apiservice groupPriorityMinimum")
        expect_eq(svc.spec.version_priority, 15, "apiservice versionPriority")
        expect_eq((svc.spec.service.namespace, svc.spec.service.name), ("wardle", "api"), "apiservice service")
    r.check("utils.create_from_yaml: Namespace, namespaced Deployment and APIService", create_from_yaml)

    def apiservice_conflict():
        try:
            utils.create_from_yaml(api_client, apiservice_path)
        except utils.FailToCreateError as e:
            expect_eq(len(e.api_exceptions), 1, "number of failures")
            ex = e.api_exceptions[0]
            expect_eq(ex.status, 409, "HTTP status")
            expect_eq(ex.body, APISERVICE_CONFLICT_BODY, "409 body (byte for byte)")
            expect_eq(str(e), "Error from server (Conflict): " + APISERVICE_CONFLICT_BODY, "str(FailToCreateError)")
        else:
            raise CheckFailed("creating the APIService again did not fail")
        reg.delete_api_service(name="v1alpha1.wardle.k8s.io", body={})
        expect_api_error(lambda: reg.read_api_service(name="v1alpha1.wardle.k8s.io"), 404, "NotFound")
    r.check("utils.create_from_yaml: APIService again raises 409 with the exact upstream body", apiservice_conflict)

    # create_from_yaml(apply=True): server-side apply through the dynamic client
    # (PATCH application/apply-patch+yaml, fieldManager=python-client).
    def create_from_yaml_apply():
        name = "applied-" + short_uuid()
        path = os.path.join(work, "apply.yaml")
        for value in ("1", "2"):
            with open(path, "w") as f:
                f.write("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  key: \"%s\"\n"
                        % (name, value))
            utils.create_from_yaml(api_client, path, namespace=NS, apply=True)
            cm = core.read_namespaced_config_map(name=name, namespace=NS)
            expect_eq(cm.data["key"], value, "applied data")
        managers = [(m.manager, m.operation) for m in cm.metadata.managed_fields or []]
        expect_eq(managers, [("python-client", "Apply")], "managedFields")
        core.delete_namespaced_config_map(name=name, namespace=NS)
    r.check("utils.create_from_yaml(apply=True): server-side apply creates, then updates", create_from_yaml_apply)

    # Dynamic client (legacy discovery: /api, /apis, /api/v1, /apis/g/v).
    def dynamic():
        dyn = DynamicClient(api_client)
        cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
        expect_eq((cms.name, cms.namespaced), ("configmaps", True), "resource name/namespaced")
        name = "dyn-" + short_uuid()
        cms.create(body=config_map_with_value(name, "d"), namespace=NS)
        got = cms.get(name=name, namespace=NS)
        expect_eq(got.data.key, "d", "get data.key")
        listed = cms.get(namespace=NS)
        expect_eq(listed.kind, "ConfigMapList", "list kind")
        names = [i.metadata.name for i in listed.items]
        expect(name in names, "%s missing from dynamic list %s" % (name, names))
        deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
        expect_eq(deps.name, "deployments", "apps/v1 Deployment resource")
        cms.delete(name=name, namespace=NS)
    r.check("DynamicClient: resources.get(v1, ConfigMap), create, get, list, delete", dynamic)

    # Pagination.
    def pagination():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=PAGE_NS)))
        want = set()
        for i in range(25):
            name = "page-%02d" % i
            core.create_namespaced_config_map(body=config_map_with_value(name, str(i)), namespace=PAGE_NS)
            want.add(name)
        total = len(core.list_namespaced_config_map(PAGE_NS).items)  # 25, plus any the server adds
        seen, pages, cont, rvs, first = [], 0, None, set(), None
        while True:
            kwargs = {"limit": 10}
            if cont:
                kwargs["_continue"] = cont
            page = core.list_namespaced_config_map(PAGE_NS, **kwargs)
            pages += 1
            expect(len(page.items) <= 10, "page %d has %d items" % (pages, len(page.items)))
            if first is None:
                first = page
            seen.extend(i.metadata.name for i in page.items)
            rvs.add(page.metadata.resource_version)
            cont = page.metadata._continue
            if not cont:
                break
            expect(pages < 10, "more than 10 pages")
        mine = [n for n in seen if n in want]
        expect_eq(len(mine), 25, "configmaps seen")
        expect_eq(len(set(seen)), len(seen), "duplicates across pages")
        expect_eq(len(first.items), 10, "first page size")
        expect_eq(first.metadata.remaining_item_count, total - 10, "remainingItemCount on the first page")
        expect_eq(pages, (total + 9) // 10, "page count")
        expect_eq(len(rvs), 1, "all pages served at the first page's resourceVersion (%s)" % sorted(rvs))
    r.check("pagination: 25 configmaps, limit=10, follow continue, remainingItemCount=15", pagination)


def main():
    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)

    r = Runner()
    server = Server()
    try:
        if not os.access(SKIFF_BIN, os.X_OK):
            r._fail("server binary exists", "%s is not executable (build with cargo build -p skiff)" % SKIFF_BIN)
        else:
            server.start()
            ready = {"ok": False}

            def wait():
                server.wait_ready()
                ready["ok"] = True
            r.check("server starts and /readyz answers 200", wait)
            if ready["ok"]:
                # What the upstream tests do: load the kubeconfig into the default configuration.
                config.load_kube_config(config_file=server.kubeconfig)
                api_client = client.ApiClient()
                run_checks(r, api_client, server.work)
                if server.proc.poll() is not None:
                    r._fail("server still running after the checks",
                            "exit status %s; log:\n%s" % (server.proc.returncode, server.log_tail()))
    except KeyboardInterrupt as e:
        r._fail("interrupted", str(e))
    finally:
        server.cleanup()
    ok = r.summary()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
