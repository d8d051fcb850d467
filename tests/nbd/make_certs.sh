#!/bin/sh
# SPDX-License-Identifier: MIT
# Make the TLS test certificates with the openssl CLI (EC P-256, valid two days) in DIR:
#   DIR/server   ca-cert.pem server-cert.pem server-key.pem  (CN and SAN localhost, 127.0.0.1, ::1)
#   DIR/client   ca-cert.pem client-cert.pem client-key.pem  (a client of the same CA)
#   DIR/nocert   ca-cert.pem                                  (trusts the server, has no cert)
#   DIR/foreign  ca-cert.pem client-cert.pem client-key.pem  (trusts the server; its own
#                certificate is signed by another CA)
# The layouts are the ones nbdkit, libnbd and qemu read. usage: make_certs.sh DIR
set -eu
dir=$1
work=$dir/.work
mkdir -p "$work" "$dir/server" "$dir/client" "$dir/nocert" "$dir/foreign"
cd "$work"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# ca NAME: a self-signed CA certificate NAME-cert.pem with key NAME-key.pem
ca() {
    key "$1-key.pem"
    openssl req -x509 -new -key "$1-key.pem" -out "$1-cert.pem" -days 2 \
        -subj "/CN=bioring test $1" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# leaf CA NAME CN USAGE EXTRA: NAME-cert.pem / NAME-key.pem signed by CA
leaf() {
    key "$2-key.pem"
    openssl req -new -key "$2-key.pem" -out "$2.csr" -subj "/CN=$3" 2>/dev/null
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$4"
        if [ -n "$5" ]; then echo "subjectAltName=$5"; fi
    } > "$2.ext"
    openssl x509 -req -in "$2.csr" -CA "$1-cert.pem" -CAkey "$1-key.pem" -CAcreateserial \
        -out "$2-cert.pem" -days 2 -extfile "$2.ext" 2>/dev/null
}

ca ca
ca otherca
leaf ca server localhost serverAuth "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf ca client "bioring test client" clientAuth ""
leaf otherca foreign "bioring foreign client" clientAuth ""

cp ca-cert.pem server-cert.pem server-key.pem "$dir/server/"
cp ca-cert.pem client-cert.pem client-key.pem "$dir/client/"
cp ca-cert.pem "$dir/nocert/"
cp ca-cert.pem "$dir/foreign/"
cp foreign-cert.pem "$dir/foreign/client-cert.pem"
cp foreign-key.pem "$dir/foreign/client-key.pem"
chmod 600 "$dir"/*/*-key.pem
