# Cluster DNS of the local node. Context: the directory holding the `coredns` binary.
FROM scratch
COPY coredns /coredns
USER 65532:65532
EXPOSE 1053/udp 1053/tcp
ENTRYPOINT ["/coredns"]
