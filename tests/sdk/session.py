"""A scripted session of the Docker SDK for Python (`docker` on PyPI) against the daemon
named by DOCKER_HOST: containers, logs, exec, images, volumes and networks. Each step prints
one line that tests/daemon_clients.rs compares; any failure raises (exit status 1).

Environment: DOCKER_HOST, SDK_PULL (an image in a local registry, REGISTRY/REPO:TAG) and
SDK_PREFIX (unique names for what the session makes)."""

import os
import time

import docker

client = docker.from_env(version="auto")
prefix = os.environ["SDK_PREFIX"]
pulled = os.environ["SDK_PULL"]

print("ping:", client.ping())

# ANCHOR: run
# containers.run without detach: create, start, wait, the logs, then the removal.
out = client.containers.run("busybox", ["echo", "hello from the sdk"], remove=True)
print("run:", out.decode().strip())
# ANCHOR_END: run

try:
    client.containers.run("busybox", ["sh", "-c", "echo failing >&2; exit 3"], remove=True)
except docker.errors.ContainerError as err:
    print("run failed:", err.exit_status, err.stderr.decode().strip())

# A detached container: its logs, exec_run, its state, stop and remove.
web = client.containers.run(
    "busybox",
    ["sh", "-c", "echo started; exec sleep 300"],
    detach=True,
    name=prefix + "-web",
    labels={"role": "web"},
)
for _ in range(300):
    if b"started" in web.logs():
        break
    time.sleep(0.05)
print("logs:", web.logs().decode().strip())
web.reload()
print("status:", web.status, web.name, web.labels["role"])
# ANCHOR: exec
code, output = web.exec_run(["sh", "-c", "echo exec $((1 + 2)); exit 4"])
print("exec:", code, output.decode().strip())
# ANCHOR_END: exec
code, output = web.exec_run("cat /etc/hostname", demux=True)
print("exec demux:", code, output[0].decode().strip() == web.id[:12], output[1])
listed = client.containers.list(filters={"label": "role=web"})
print("list:", [c.name for c in listed])
web.stop(timeout=1)
web.reload()
print("stopped:", web.status, web.attrs["State"]["ExitCode"])
web.remove()
print("removed:", [c.name for c in client.containers.list(all=True, filters={"name": prefix})])

# Images: list, pull from the local registry, tag, inspect, remove.
tags = sorted(t for i in client.images.list() for t in i.tags)
print("images:", tags)
repo, tag = pulled.rsplit(":", 1)
image = client.images.pull(repo, tag=tag)
print("pulled:", sorted(image.tags))
image.tag(prefix + "/copy", "v1")
print("tagged:", sorted(client.images.get(prefix + "/copy:v1").tags))
client.images.remove(prefix + "/copy:v1")
client.images.remove(pulled)
print("images after:", sorted(t for i in client.images.list() for t in i.tags))

# Volumes: create, list, inspect, remove.
volume = client.volumes.create(prefix + "-vol", labels={"kept": "no"})
print("volume:", volume.name, volume.attrs["Driver"], volume.attrs["Labels"])
print("volumes:", [v.name for v in client.volumes.list(filters={"name": prefix})])
volume.remove()
print("volumes after:", [v.name for v in client.volumes.list(filters={"name": prefix})])

# Networks: create, list, connect and disconnect a container, remove.
network = client.networks.create(prefix + "-net", driver="bridge", labels={"team": "sdk"})
print("networks:", [n.name for n in client.networks.list(names=[prefix + "-net"])])
box = client.containers.create("busybox", ["true"], name=prefix + "-box", network=network.name)
back = client.networks.create(prefix + "-back")
back.connect(box, aliases=["boxy"])
box.reload()
print("connected:", sorted(box.attrs["NetworkSettings"]["Networks"]))
back.disconnect(box)
box.reload()
print("disconnected:", sorted(box.attrs["NetworkSettings"]["Networks"]))
box.remove()
back.remove()
network.remove()
print("networks after:", [n.name for n in client.networks.list(names=[prefix + "-net"])])
