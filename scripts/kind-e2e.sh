#!/usr/bin/env bash
# End-to-end install of the modelguard chart into a throwaway kind cluster.
#
# NOT RUN IN CI OR ON THE DEVELOPMENT MACHINES OF THIS PROJECT: they have no Docker engine and
# no Kubernetes. It needs a machine with Docker, kind (https://kind.sigs.k8s.io), helm and
# kubectl on PATH (scripts/install-tools.sh provides helm and kubectl in .tools/bin).
#
# What it does: trains the model, builds the predictor image (`bentoml containerize`) and a
# monitor image, loads both into kind, installs the chart (mode auto, digests not used: local
# images), waits for the rollout, runs `helm test`, sends predictions from an allowed client
# pod, checks that the monitor registered the version and that `kubectl get modelmonitors`
# reports it, then exercises upgrade, `helm rollback` and uninstall. The cluster is deleted at
# the end unless KEEP_CLUSTER=1.
#
# Usage: scripts/kind-e2e.sh            (env: KIND_NODE_IMAGE=kindest/node:v1.30.x, KEEP_CLUSTER=1)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PWD/.venv/bin:$PATH"
export BENTOML_DO_NOT_TRACK=true NML_DISABLE_USAGE_LOGGING=1
export BENTOML_HOME="${BENTOML_HOME:-$PWD/var/bentoml}"

CLUSTER=modelguard-e2e
NS=modelguard
RELEASE=rain
TAG=e2e-$(date +%s)
PREDICTOR_IMAGE=modelguard/rain-forecast
MONITOR_IMAGE=modelguard/monitor

for tool in docker kind helm kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is required" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "kind-e2e: no Docker engine reachable" >&2; exit 2; }

cleanup() {
  if [ "${KEEP_CLUSTER:-0}" != 1 ]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "cluster"
kind create cluster --name "$CLUSTER" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s
kubectl create namespace "$NS"

step "model and images"
make train
VERSION=$(python -c "import bentoml; print(bentoml.models.get('rain_forecast:latest').tag.version)")
bentoml build . >/dev/null
bentoml containerize rain_forecast:latest -t "$PREDICTOR_IMAGE:$TAG"
monitor_dockerfile=$(mktemp)
cat >"$monitor_dockerfile" <<'EOF'
FROM python:3.11-slim
ENV BENTOML_DO_NOT_TRACK=true NML_DISABLE_USAGE_LOGGING=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bentos ./bentos
COPY monitor ./monitor
RUN pip install --no-cache-dir '.[monitor]'
USER 10001:10001
EXPOSE 8080
CMD ["modelguard-monitor", "serve"]
EOF
docker build -f "${MONITOR_DOCKERFILE:-$monitor_dockerfile}" -t "$MONITOR_IMAGE:$TAG" .
kind load docker-image --name "$CLUSTER" "$PREDICTOR_IMAGE:$TAG" "$MONITOR_IMAGE:$TAG"

step "install"
kubectl apply -f k8s/crds/modelmonitor.yaml
helm install "$RELEASE" helm/modelguard -n "$NS" --wait --timeout 10m \
  --set predictor.image.repository="$PREDICTOR_IMAGE" --set predictor.image.tag="$TAG" \
  --set predictor.image.pullPolicy=Never \
  --set monitor.image.repository="$MONITOR_IMAGE" --set monitor.image.tag="$TAG" \
  --set monitor.image.pullPolicy=Never \
  --set predictor.model.version="$VERSION" --set modelMonitor.mode=auto
helm test "$RELEASE" -n "$NS" --logs

step "traffic from an allowed client"
kubectl -n "$NS" run client --restart=Never --labels=modelguard.dev/predictor-client=true \
  --image=docker.io/curlimages/curl:8.11.1 --command -- sh -c '
    for i in $(seq 1 50); do
      curl -fsS -H "Content-Type: application/json" \
        -d "{\"records\": [{\"origin\": \"JFK\", \"hour\": 9, \"temp\": 70, \"dewp\": 60, \"humid\": 70,
             \"wind_dir\": 180, \"wind_speed\": 8, \"wind_gust\": null, \"precip\": 0,
             \"pressure\": 1012, \"visib\": 10}]}" \
        http://'"$RELEASE"'-modelguard-predictor:3000/predict >/dev/null
    done'
kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/client --timeout=120s

step "monitor state"
kubectl -n "$NS" port-forward "svc/$RELEASE-modelguard-monitor" 18080:8080 >/dev/null &
pf=$!
sleep 3
curl -fsS http://127.0.0.1:18080/v1/models | grep -q "\"$VERSION\"" \
  || { echo "kind-e2e: monitor did not register $VERSION" >&2; kill "$pf"; exit 1; }
kill "$pf"
kubectl -n "$NS" get modelmonitors -o wide

step "upgrade, helm rollback, uninstall"
helm upgrade "$RELEASE" helm/modelguard -n "$NS" --reuse-values --set predictor.replicaCount=3 --wait
helm rollback "$RELEASE" 1 -n "$NS" --wait
helm uninstall "$RELEASE" -n "$NS" --wait
kubectl -n "$NS" get pvc "$RELEASE-modelguard-monitor"   # kept on purpose
echo "kind-e2e: ok"
