#!/bin/sh
# Makes an OCI bundle at DIR from Debian's busybox-static: rootfs/ plus a config.json
# (from `berth-runtime spec`, with terminal off) that runs ARGS (default: a greeting).
set -eu
dir=${1:?usage: busybox-bundle.sh DIR [ARGS...]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
busybox=$(command -v busybox || true)
[ -x /bin/busybox ] && busybox=/bin/busybox
[ -n "$busybox" ] || { echo "busybox-bundle.sh: install busybox-static first (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp" "$dir/rootfs/root"
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$dir/rootfs/bin/busybox" --list); do
  [ -e "$dir/rootfs/bin/$applet" ] || ln -s busybox "$dir/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
node "$here/dist/berth-runtime.cjs" spec --bundle "$dir"
node -e '
const fs = require("fs");
const path = process.argv[1] + "/config.json";
const spec = JSON.parse(fs.readFileSync(path, "utf8"));
spec.process.terminal = false;
const args = process.argv.slice(2);
spec.process.args = args.length ? args : ["sh", "-c", "echo hello from a Berth container on $(hostname)"];
fs.writeFileSync(path, JSON.stringify(spec, null, "\t") + "\n");
' "$dir" "$@"
