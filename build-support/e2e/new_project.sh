#!/usr/bin/env bash
# Proves, in a throwaway clone, that growing the repository is one command and that its
# architecture is enforced:
#   1. `new-project` makes a torch project with an image and an LM service; straight after it,
#      with no hand edits, tailor/update-build-files, lint, check, test and package (its PEX)
#      pass, and its docker_image exists;
#   2. bad input (a taken name, an invalid name, an unknown option) exits 2 and writes nothing;
#   3. a lib importing a project, and a project importing another project, are refused by the
#      visibility rules with a message naming the rule.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
work="$(mktemp -d)"
cleanup() {
  # The clone's pantsd (its process title names the build root) would outlive the directory.
  pkill -f "pantsd \[$work/clone\]" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# new-project runs ./pants itself (generate-lockfiles) from inside `./pants run`: no pantsd
# until both projects exist, or the inner call waits for the outer one.
export PANTS_CONCURRENT=True

git clone -q "$repo" "$work/clone"
# The clone's mypy cache starts as a copy of this checkout's (when it has one), as a developer's
# second checkout could: mypy still checks every module; unchanged ones cost no re-analysis.
bash "$repo/build-support/mypy-cache-dir.sh" "$work/clone" "$repo"
cd "$work/clone"
git config user.email e2e@example.invalid
git config user.name "new-project e2e"
fail() {
  echo "new_project.sh: FAILED: $*" >&2
  exit 1
}

echo "--- new-project: a torch project with an image, and an LM service"
./pants run tools/scaffold:new-project -- demo-model --torch --image --description "A demo model"
./pants run tools/scaffold:new-project -- demo-api --kind service --lm
git add -A
git commit -qm "two new projects"
# From here on one pantsd keeps the build graph between the calls (each cold call cost 25 s).
unset PANTS_CONCURRENT

echo "--- the checks pass with no hand edits"
./pants tailor --check update-build-files --check ::
./pants lint check test projects/demo-model:: services/demo-api::
# The PEX is built; the image is only listed: every image comes from the same prelude macro,
# and the publish proof builds, pushes, pulls and runs those (building one more here cost 150 s).
# The scaffold's own PEX too, for the refusals below.
./pants --filter-target-type=-docker_image package projects/demo-model:: tools/scaffold:new-project
# A packed PEX is a directory.
[[ -e dist/projects.demo-model/demo-model.pex ]] || fail "no PEX for demo-model"
./pants list --filter-target-type=docker_image projects/demo-model:: | grep -qx "projects/demo-model:demo-model-image" ||
  fail "no docker_image for demo-model"

echo "--- bad input exits 2 and writes nothing"
# The scaffold PEX packaged above, the program `./pants run` ran: a Pants run per refusal cost 40 s.
for args in "demo-model" "Bad_Name" "demo-x --gpu" "json"; do
  status=0
  # shellcheck disable=SC2086  # the words of $args are separate arguments
  python3.11 dist/tools.scaffold/new-project.pex $args >"$work/out" 2>&1 || status=$?
  ((status == 2)) || { cat "$work/out"; fail "new-project $args exited $status, not 2"; }
  grep -q "new-project: error:" "$work/out" || { cat "$work/out"; fail "no error message for: $args"; }
  [[ -z "$(git status --porcelain)" ]] || { git status --short; fail "new-project $args wrote files"; }
  echo "refused: new-project $args -> $(grep 'new-project: error:' "$work/out" | head -n 1)"
done

echo "--- forbidden imports are refused, naming the rule"
refused() { # $1: what, $2: spec; the goal must fail on a visibility rule
  status=0
  ./pants check "$2" >"$work/out" 2>&1 || status=$?
  ((status != 0)) || fail "$1 was accepted"
  grep -q "DependencyRuleActionDeniedError" "$work/out" || { cat "$work/out"; fail "$1 failed for another reason"; }
  echo "refused: $1 -> $(grep -m 1 -E '^\s+\* .*DENY' "$work/out" | sed 's/^ *//')"
}
mkdir -p libs/leak/src/leak
echo "import mnist.model  # noqa: F401" >libs/leak/src/leak/__init__.py
echo 'python_sources(resolve="mnist")' >libs/leak/src/leak/BUILD
refused "a lib importing a project" libs/leak/src/leak:
rm -rf libs/leak
mkdir -p projects/thief/src/thief
echo 'import mnist.model  # noqa: F401' >projects/thief/src/thief/__init__.py
cat >projects/thief/BUILD <<'BUILD'
__dependencies_rules__(("*", "/**", "//libs/**", "//3rdparty/**", "!*"))

__defaults__(all=dict(resolve="mnist"))
BUILD
echo 'python_sources()' >projects/thief/src/thief/BUILD
refused "a project importing another project" projects/thief/src/thief:
echo "new_project.sh: OK"
