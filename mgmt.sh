#!/usr/bin/env bash
# Sets up (or brings up to date) the management cluster of the O-RAN lifecycle manager:
# cert-manager, Cluster API v1.10.10 with the BYOH v0.5.0 provider, and the product's Helm chart.
# Safe to run again; a Cluster API older than v1.10 is refused before anything changes.
# `./mgmt.sh --help` for the options; `--dry-run` prints every command instead.
set -Eeuo pipefail

# Versions the product is built and tested against.
CAPI_VERSION=v1.10.10
BYOH_VERSION=v0.5.0
CERT_MANAGER_VERSION=v1.19.1
# Kubernetes v1.33.1, the node image kind v0.29.0 was released with (Cluster API v1.10's management
# clusters run v1.29 to v1.33).
KIND_NODE_IMAGE=kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f
# The last v1.7 release: a management cluster on Cluster API v1.4 to v1.6 is upgraded to it first,
# since Cluster API allows skipping at most three minor versions (step 2 says how).
CAPI_UPGRADE_VIA=v1.7.9

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

KUBECONFIG_FILE=""
CREATE_LOCAL=false
KIND_NAME=oran-lcm-mgmt
API_SERVER_ADDRESS=""
VALUES_FILES=()
IMAGE_TAG=""
INVENTORY="$ROOT/input.json"
CHART="$ROOT/deploy/helm/oran-lcm"
RELEASE=oran-lcm
RELEASE_NAMESPACE=oran-lcm-system
OPERATOR_NAMESPACE=o2ims-system
BYOH_NAMESPACE=byoh-hosts
CALICO_VERSION=""
CALICO_CONFIGMAP=calico-manifest
SSH_KEY=""
SSH_KEY_SECRET=o2ims-host-ssh-key
BOOTSTRAP_APISERVER=""
O2IMS_API_URL=""
O2IMS_API_TLS_SECRET=o2ims-api-tls
TIMEOUT=600s
DRY_RUN=false

usage() {
  cat <<EOF
Usage: mgmt.sh [OPTIONS]

Sets up the management cluster, idempotently, in this order:
  1. (--create-local) a local kind cluster '$KIND_NAME' from ${KIND_NODE_IMAGE%@*} (needs Docker)
  2. reads the Cluster API providers clusterctl installed, and stops before changing anything when
     the core, kubeadm bootstrap or kubeadm control-plane provider is older than ${CAPI_VERSION%.*}: such
     a cluster is upgraded first with clusterctl upgrade (the message and docs/operations.md say how)
  3. cert-manager $CERT_MANAGER_VERSION, unless it is installed; waits until it is available
  4. EXP_CLUSTER_RESOURCE_SET=true clusterctl init with Cluster API $CAPI_VERSION (core, kubeadm
     bootstrap and control plane) and BYOH $BYOH_VERSION, for the providers not installed yet; a
     provider installed at another, not older, version is kept, with a warning
  5. the Helm chart deploy/helm/oran-lcm as release '$RELEASE' in '$RELEASE_NAMESPACE', with the
     inventory (--set-file inventory.json=INVENTORY); the chart also holds the host-preparation playbook,
     and with --o2ims-api-url the O2ims REST API
  6. the namespaces '$OPERATOR_NAMESPACE' and '$BYOH_NAMESPACE' (ByoHosts), and in '$OPERATOR_NAMESPACE'
     the ConfigMap '$CALICO_CONFIGMAP' (with --calico-version) and the Secret '$SSH_KEY_SECRET' (with --ssh-key)
  7. waits until every Deployment of the cluster is available

Options:
  --kubeconfig FILE        use FILE (default: \$KUBECONFIG or ~/.kube/config, current context)
  --create-local           create the local kind cluster first (kept when it exists)
  --kind-name NAME         name of that kind cluster (default: $KIND_NAME)
  --api-server-address IP  address the kind API server listens on; hosts must reach the management
                           cluster to register, and 127.0.0.1 (kind's default) is reachable from nowhere else
  --values FILE            extra Helm values file (repeatable)
  --image-tag TAG          operator image tag (--set image.tag=TAG)
  --inventory FILE         inventory given to the chart (default: input.json)
  --chart DIR              the chart (default: deploy/helm/oran-lcm)
  --operator-namespace NS  namespace of the O2IMS operator's ConfigMaps and Secrets (default: $OPERATOR_NAMESPACE)
  --byoh-namespace NS      namespace the host agents register ByoHosts in (default: $BYOH_NAMESPACE)
  --calico-version VER     download Calico VER's calico.yaml (e.g. v3.26.1) into ConfigMap '$CALICO_CONFIGMAP'
  --ssh-key FILE           SSH private key for host preparation, stored in Secret '$SSH_KEY_SECRET'
  --bootstrap-apiserver URL
                           this cluster's API server as the hosts reach it (https://host:port): the
                           hosts the O2IMS operator prepares register there (needed for hostPreparation: auto)
  --o2ims-api-url URL      serve the O2ims REST API, SMOs reaching it at URL (https://host[:port]);
                           the TLS Secret '$O2IMS_API_TLS_SECRET' must exist in '$OPERATOR_NAMESPACE' first.
                           Without it the API is not installed (api.enabled=false)
  --cert-manager-version V cert-manager to install when absent (default: $CERT_MANAGER_VERSION)
  --timeout DURATION       how long each wait may take (default: $TIMEOUT)
  --dry-run                print every command instead of running it; needs no cluster and no tools
  -h, --help               this help

Needs kubectl, clusterctl ($CAPI_VERSION) and helm (3); curl with --calico-version; kind (v0.29.0)
and a running Docker engine with --create-local.
EOF
}

# --- steps, errors and commands -------------------------------------------------------------

STEP="reading options"

# Names the step that the following commands belong to.
step() {
  STEP=$1
  printf '==> %s\n' "$STEP"
}

# Fails the current step with a reason.
die() {
  printf 'mgmt.sh: step "%s" failed: %s\n' "$STEP" "$*" >&2
  exit 1
}

on_error() {
  local status=$1 line=$2 command=$3
  # A failing command substitution reports through the command that ran it.
  if [[ $BASHPID != "$$" ]]; then
    exit "$status"
  fi
  printf "mgmt.sh: step \"%s\" failed: '%s' exited with %s (mgmt.sh line %s)\n" \
    "$STEP" "$command" "$status" "$line" >&2
  exit "$status"
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

# Runs a command, or prints it with --dry-run.
run() {
  if $DRY_RUN; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    local status=0
    "$@" || status=$?
    if ((status != 0)); then
      printf 'mgmt.sh: step "%s" failed: ' "$STEP" >&2
      printf '%q ' "$@" >&2
      printf 'exited with %s\n' "$status" >&2
      exit "$status"
    fi
  fi
}

# Whether a command that only reads succeeds; with --dry-run nothing is read and the answer is no.
probe() {
  if $DRY_RUN; then
    return 1
  fi
  "$@" >/dev/null 2>&1
}

need_tools() {
  local missing=() tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]} > 0)); then
    die "missing tools: ${missing[*]} (install them and put them on PATH, or see --help)"
  fi
}

# --- options ---------------------------------------------------------------------------------

need_value() {
  (($2 >= 2)) || die "$1 needs a value (see --help)"
}

while (($# > 0)); do
  case $1 in
    --kubeconfig) need_value "$1" $#; KUBECONFIG_FILE=$2; shift 2 ;;
    --create-local) CREATE_LOCAL=true; shift ;;
    --kind-name) need_value "$1" $#; KIND_NAME=$2; shift 2 ;;
    --api-server-address) need_value "$1" $#; API_SERVER_ADDRESS=$2; shift 2 ;;
    --values) need_value "$1" $#; VALUES_FILES+=("$2"); shift 2 ;;
    --image-tag) need_value "$1" $#; IMAGE_TAG=$2; shift 2 ;;
    --inventory) need_value "$1" $#; INVENTORY=$2; shift 2 ;;
    --chart) need_value "$1" $#; CHART=$2; shift 2 ;;
    --operator-namespace) need_value "$1" $#; OPERATOR_NAMESPACE=$2; shift 2 ;;
    --byoh-namespace) need_value "$1" $#; BYOH_NAMESPACE=$2; shift 2 ;;
    --calico-version) need_value "$1" $#; CALICO_VERSION=$2; shift 2 ;;
    --ssh-key) need_value "$1" $#; SSH_KEY=$2; shift 2 ;;
    --bootstrap-apiserver) need_value "$1" $#; BOOTSTRAP_APISERVER=$2; shift 2 ;;
    --o2ims-api-url) need_value "$1" $#; O2IMS_API_URL=$2; shift 2 ;;
    --cert-manager-version) need_value "$1" $#; CERT_MANAGER_VERSION=$2; shift 2 ;;
    --timeout) need_value "$1" $#; TIMEOUT=$2; shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

step "checking options and tools"
[[ -f $INVENTORY ]] || die "inventory $INVENTORY does not exist"
for file in "${VALUES_FILES[@]}"; do
  [[ -f $file ]] || die "values file $file does not exist"
done
[[ -z $SSH_KEY || -f $SSH_KEY ]] || die "SSH key $SSH_KEY does not exist"
[[ -z $BOOTSTRAP_APISERVER || $BOOTSTRAP_APISERVER =~ ^https://[^/]+$ ]] ||
  die "--bootstrap-apiserver must look like https://192.0.2.10:6443, got '$BOOTSTRAP_APISERVER'"
[[ -z $O2IMS_API_URL || $O2IMS_API_URL =~ ^https://[^/]+$ ]] ||
  die "--o2ims-api-url must look like https://o2ims.example.org:8443, got '$O2IMS_API_URL'"
[[ -z $CALICO_VERSION || $CALICO_VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
  die "--calico-version must look like v3.26.1, got '$CALICO_VERSION'"
if [[ -n $KUBECONFIG_FILE ]]; then
  # kind writes it; every other tool reads it.
  [[ -f $KUBECONFIG_FILE ]] || $CREATE_LOCAL || $DRY_RUN || die "kubeconfig $KUBECONFIG_FILE does not exist"
  export KUBECONFIG=$KUBECONFIG_FILE
fi
if $DRY_RUN; then
  echo "dry run: printing the commands; nothing is changed"
  WORK=${TMPDIR:-/tmp}/mgmt.sh.XXXXXX # printed only
else
  tools=(kubectl clusterctl helm)
  [[ -z $CALICO_VERSION ]] || tools+=(curl)
  ! $CREATE_LOCAL || tools+=(kind docker)
  need_tools "${tools[@]}"
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi

# --- 1. local cluster ------------------------------------------------------------------------

if $CREATE_LOCAL; then
  step "creating the local kind cluster '$KIND_NAME'"
  if ! $DRY_RUN && ! docker info >/dev/null 2>&1; then
    die "--create-local needs a running Docker engine, and \`docker info\` failed (is the daemon running and may this user use it?)"
  fi
  kubeconfig_args=()
  [[ -z $KUBECONFIG_FILE ]] || kubeconfig_args=(--kubeconfig "$KUBECONFIG_FILE")
  if probe kind get kubeconfig --name "$KIND_NAME"; then
    echo "kind cluster '$KIND_NAME' exists; using it"
    run kind export kubeconfig --name "$KIND_NAME" "${kubeconfig_args[@]}"
  else
    kind_config=$WORK/kind.yaml
    kind_yaml="apiVersion: kind.x-k8s.io/v1alpha4"$'\n'"kind: Cluster"$'\n'
    if [[ -n $API_SERVER_ADDRESS ]]; then
      kind_yaml+="networking:"$'\n'"  apiServerAddress: \"$API_SERVER_ADDRESS\""$'\n'
    fi
    if $DRY_RUN; then
      printf '+ cat > %s <<EOF\n%sEOF\n' "$kind_config" "$kind_yaml"
    else
      printf '%s' "$kind_yaml" >"$kind_config"
    fi
    run kind create cluster --name "$KIND_NAME" --image "$KIND_NODE_IMAGE" --config "$kind_config" \
      --wait "$TIMEOUT" "${kubeconfig_args[@]}"
  fi
fi

step "checking the cluster is reachable"
if $DRY_RUN; then
  run kubectl version
else
  context=$(kubectl config current-context 2>/dev/null) ||
    die "no current kube context (use --kubeconfig FILE, or --create-local)"
  kubectl version >/dev/null 2>&1 ||
    die "the API server of context '$context' does not answer (\`kubectl version\` failed)"
  echo "using context '$context'"
fi

# --- 2. the Cluster API installed already ----------------------------------------------------

# Sets $major and $minor from vMAJOR.MINOR.PATCH (compared as numbers: v1.10 is newer than v1.4);
# fails on another form.
split_version() {
  [[ $1 =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+ ]] || return 1
  major=$((10#${BASH_REMATCH[1]}))
  minor=$((10#${BASH_REMATCH[2]}))
}

# clusterctl upgrade apply moving core, kubeadm bootstrap and control plane to release $1.
upgrade_apply() {
  printf 'clusterctl upgrade apply --core cluster-api:%s --bootstrap kubeadm:%s --control-plane kubeadm:%s' \
    "$1" "$1" "$1"
}

# Why mgmt.sh stops, and the clusterctl upgrade steps from Cluster API v$old_major.$old_minor (the
# oldest provider) to $CAPI_VERSION, at most three minor versions each.
upgrade_first_message() {
  local runs=$1 providers=$2 target=${CAPI_VERSION%.*} via=${CAPI_UPGRADE_VIA%.*}
  local from="v$old_major.$old_minor" n=1 steps=""
  printf 'the management cluster runs Cluster API %s (older than %s: %s).\n' "$runs" "$target" "$providers"
  printf 'mgmt.sh installs Cluster API %s but does not upgrade an older one; nothing was changed.\n' "$CAPI_VERSION"
  if ((old_major == want_major && want_minor - old_minor <= 3)); then
    printf 'Upgrade it first, in one step (Cluster API allows skipping at most three minor versions):\n'
  else
    printf 'Upgrade it first, in steps, since Cluster API allows skipping at most three minor versions:\n'
    if ((old_major < 1 || (old_major == 1 && old_minor < 4))); then
      steps+="  $n. $from -> v1.4, v1.5 or v1.6, as Cluster API's upgrade documentation says"$'\n'
      from="v1.4/v1.5/v1.6"
      n=$((n + 1))
    fi
    steps+="  $n. $from -> $via with clusterctl $CAPI_UPGRADE_VIA: \`clusterctl upgrade plan\`, then"$'\n'
    steps+="     \`$(upgrade_apply "$CAPI_UPGRADE_VIA")\`"$'\n'
    from=$via
    n=$((n + 1))
  fi
  steps+="  $n. $from -> $target with clusterctl $CAPI_VERSION: \`clusterctl upgrade plan\`, then"$'\n'
  steps+="     \`$(upgrade_apply "$CAPI_VERSION")\`"$'\n'
  printf '%s' "$steps"
  printf '%s\n' "Name the versions: \`clusterctl upgrade apply --contract v1beta1\` goes to the newest v1beta1"
  printf 'release (%s) whichever clusterctl runs it. Then run mgmt.sh again. docs/operations.md, section\n' "$target"
  printf '"Upgrading a management cluster from Cluster API v1.4", has the details.'
}

step "checking the installed Cluster API providers"
# Providers clusterctl records as installed, as NAME=VERSION lines (none with --dry-run). They are
# only read here, before anything is installed, so that a Cluster API too old to move to
# $CAPI_VERSION stops mgmt.sh with the cluster as it was.
installed=""
! $DRY_RUN || echo "dry run: nothing is read, so every provider counts as not installed"
if probe kubectl get crd providers.clusterctl.cluster.x-k8s.io; then
  installed=$(kubectl get providers.clusterctl.cluster.x-k8s.io --all-namespaces \
    -o jsonpath='{range .items[*]}{.metadata.name}={.version}{"\n"}{end}')
fi
split_version "$CAPI_VERSION"
want_major=$major want_minor=$minor
init_args=()
too_old=()
old_major="" old_minor="" old_version=""
for provider in "cluster-api --core cluster-api:$CAPI_VERSION" \
  "bootstrap-kubeadm --bootstrap kubeadm:$CAPI_VERSION" \
  "control-plane-kubeadm --control-plane kubeadm:$CAPI_VERSION" \
  "infrastructure-byoh --infrastructure byoh:$BYOH_VERSION"; do
  read -r name flag spec <<<"$provider"
  want=${spec#*:}
  version=$(sed -n "s/^$name=//p" <<<"$installed")
  if [[ -z $version ]]; then
    init_args+=("$flag" "$spec")
  elif [[ $version == "$want" ]]; then
    echo "provider $name $version is installed"
  elif [[ $name == infrastructure-byoh ]]; then
    echo "warning: provider $name is at $version, not $want; leaving it (clusterctl upgrade is not automated)" >&2
  elif ! split_version "$version"; then
    die "provider $name reports version '$version', not vMAJOR.MINOR.PATCH: is it older than $CAPI_VERSION?"
  elif ((major < want_major || (major == want_major && minor < want_minor))); then
    too_old+=("$name $version")
    if [[ -z $old_major ]] || ((major < old_major || (major == old_major && minor < old_minor))); then
      old_major=$major old_minor=$minor old_version=$version
    fi
  else
    echo "warning: provider $name is at $version, not $want; leaving it (clusterctl upgrade is not automated)" >&2
  fi
done
if ((${#too_old[@]} > 0)); then
  # The core provider's version when it is too old, or else the oldest provider's.
  runs=$old_version
  [[ ${too_old[0]} != cluster-api\ * ]] || runs=${too_old[0]#* }
  listed=$(printf '%s, ' "${too_old[@]}")
  die "$(upgrade_first_message "$runs" "${listed%, }")"
fi

# --- 3. cert-manager -------------------------------------------------------------------------

step "installing cert-manager $CERT_MANAGER_VERSION"
if probe kubectl get deployment cert-manager --namespace cert-manager; then
  echo "cert-manager is installed; keeping its version"
else
  run kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
fi
step "waiting for cert-manager"
run kubectl wait --for=condition=Available deployment --all --namespace cert-manager --timeout "$TIMEOUT"

# --- 4. Cluster API and BYOH -----------------------------------------------------------------

step "installing Cluster API $CAPI_VERSION and BYOH $BYOH_VERSION"
if ((${#init_args[@]} > 0)); then
  # ClusterResourceSets (the Calico CNI is applied by one) are GA in Cluster API v1.10 and on unless
  # EXP_CLUSTER_RESOURCE_SET=false: set, so that a clusterctl configuration saying false does not win.
  run env EXP_CLUSTER_RESOURCE_SET=true clusterctl init "${init_args[@]}" --wait-providers
else
  echo "Cluster API and BYOH are installed"
fi

# --- 5. the product --------------------------------------------------------------------------

step "installing the Helm chart $RELEASE"
if ! $DRY_RUN && [[ ! -f $CHART/Chart.yaml ]]; then
  die "no Helm chart at $CHART (Chart.yaml missing)"
fi
helm_args=(upgrade --install "$RELEASE" "$CHART" --namespace "$RELEASE_NAMESPACE" --create-namespace
  --set-file "inventory.json=$INVENTORY"
  --set "o2ims.namespace=$OPERATOR_NAMESPACE" --set "o2ims.byohNamespace=$BYOH_NAMESPACE")
for file in "${VALUES_FILES[@]}"; do
  helm_args+=(-f "$file")
done
[[ -z $IMAGE_TAG ]] || helm_args+=(--set "image.tag=$IMAGE_TAG")
[[ -z $BOOTSTRAP_APISERVER ]] || helm_args+=(--set "o2ims.hostPreparation.bootstrapApiServer=$BOOTSTRAP_APISERVER")
if [[ -n $O2IMS_API_URL ]]; then
  # Its pods start only with their certificate: without it the wait below would time out.
  $DRY_RUN || probe kubectl --namespace "$OPERATOR_NAMESPACE" get secret "$O2IMS_API_TLS_SECRET" ||
    die "the O2ims API's TLS Secret $OPERATOR_NAMESPACE/$O2IMS_API_TLS_SECRET does not exist: create it first (kubectl create namespace $OPERATOR_NAMESPACE; kubectl --namespace $OPERATOR_NAMESPACE create secret tls $O2IMS_API_TLS_SECRET --cert=FILE --key=FILE, or a cert-manager Certificate)"
  helm_args+=(--set "api.externalUrl=$O2IMS_API_URL" --set "api.tls.secretName=$O2IMS_API_TLS_SECRET")
else
  helm_args+=(--set api.enabled=false)
fi
run helm "${helm_args[@]}" --wait --timeout "$TIMEOUT"

# --- 6. namespaces, ConfigMaps and Secrets the operator reads ----------------------------------

ensure_namespace() {
  if probe kubectl get namespace "$1"; then
    echo "namespace $1 exists"
  else
    run kubectl create namespace "$1"
  fi
}

# Applies a manifest that kubectl renders into $WORK/$1 from the remaining arguments. Server-side
# apply: a client-side apply would copy the data (Calico is ~300 KB) into an annotation, limited to 256 KB.
apply_rendered() {
  local file=$WORK/$1
  shift
  if $DRY_RUN; then
    printf '+'
    printf ' %q' "$@" --dry-run=client -o yaml
    printf ' > %s\n' "$file"
  else
    "$@" --dry-run=client -o yaml >"$file"
  fi
  run kubectl apply --server-side --force-conflicts --field-manager mgmt.sh -f "$file"
}

step "creating the namespaces $OPERATOR_NAMESPACE and $BYOH_NAMESPACE"
ensure_namespace "$OPERATOR_NAMESPACE"
ensure_namespace "$BYOH_NAMESPACE"

if [[ -n $CALICO_VERSION ]]; then
  step "storing Calico $CALICO_VERSION in ConfigMap $CALICO_CONFIGMAP"
  run curl -fsSL --retry 3 -o "$WORK/calico.yaml" \
    "https://raw.githubusercontent.com/projectcalico/calico/$CALICO_VERSION/manifests/calico.yaml"
  apply_rendered calico-configmap.yaml kubectl create configmap "$CALICO_CONFIGMAP" \
    --namespace "$OPERATOR_NAMESPACE" "--from-file=calico.yaml=$WORK/calico.yaml"
fi

if [[ -n $SSH_KEY ]]; then
  step "storing the SSH key in Secret $SSH_KEY_SECRET"
  apply_rendered ssh-key.yaml kubectl create secret generic "$SSH_KEY_SECRET" \
    --namespace "$OPERATOR_NAMESPACE" "--from-file=ssh-privatekey=$SSH_KEY"
fi

# --- 7. everything up ------------------------------------------------------------------------

step "waiting for every Deployment to be available"
run kubectl wait --for=condition=Available deployment --all --all-namespaces --timeout "$TIMEOUT"

step "done"
if $DRY_RUN; then
  echo "dry run complete: nothing was changed"
else
  echo "management cluster ready (context '$(kubectl config current-context)')"
fi
