# Sourced by scripts/test.sh and .ci/run: the build settings of the test build, shared so that the
# lints and the tests build the same build scripts and proc macros once. Set any variable to
# override it.
#
# - Line tables only for the workspace's crates (file:line in backtraces, no variable info);
#   dependencies carry no debug info at all (Cargo.toml, [profile.dev.package."*"]).
# - mold links the ~30 test binaries in a fraction of ld's time on 2 cores.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
if command -v mold >/dev/null && [ -z "${RUSTFLAGS+x}" ]; then
    export RUSTFLAGS="-C link-arg=-fuse-ld=mold"
fi
