# The local node's ingress controller. Context: the directory holding the `traefik` binary.
FROM scratch
COPY traefik /traefik
USER 65532:65532
EXPOSE 8000 8443
ENTRYPOINT ["/traefik"]
