# The fake WorkOS (tests/harness/src/bin/fake-workos.rs) as a pod of the local node, so mirror
# pods have an upstream inside the cluster. Context: image/build-binary.sh's output directory.
FROM scratch
COPY fake-workos /fake-workos
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/fake-workos"]
CMD ["--listen", "0.0.0.0:8080", "--jwks", "/etc/fake-workos/jwks.json"]
