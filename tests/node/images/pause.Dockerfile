# registry.k8s.io/pause:3.10 as the local node's containerd knows it (sandbox_image), built here
# from pause.c: no image can be pulled. Context: the directory holding the static `pause`.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
