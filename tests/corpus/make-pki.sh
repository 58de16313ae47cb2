#!/usr/bin/env bash
# Makes the certificates and throwaway keys of the lint corpus (tests/corpus/_pki/).
# They are checked in: run this only to replace them, then copy the files the cases
# use (see tests/corpus/README.md). CAs are valid for 30 years, so the corpus does not
# expire under the tests; validity cases pin the clock with a `now` file instead.
# Every key here is a test fixture made for this corpus and protects nothing.
set -euo pipefail
cd "$(dirname "$0")"
out=_pki
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
days=10950

ca() { # name, extra args...
  local name=$1; shift
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/$name.key" -out "$out/$name.pem" -days $days \
    -subj "/O=catrust corpus/CN=$name" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" "$@" 2>/dev/null
}

signed() { # name, issuer, extension lines
  local name=$1 issuer=$2 ext=$3
  printf '%b\n' "$ext" >"$work/$name.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/$name.key" -out "$work/$name.csr" -subj "/O=catrust corpus/CN=$name" 2>/dev/null
  openssl x509 -req -in "$work/$name.csr" -CA "$out/$issuer.pem" -CAkey "$work/$issuer.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days $days -extfile "$work/$name.ext" \
    -out "$out/$name.pem" 2>/dev/null
}

for n in 01 02 03 04 05 06 07 08 09 10 11; do ca "root-$n"; done

# A leaf (CA:FALSE) and an intermediate CA, both issued by root-01.
signed leaf root-01 "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:corp.example"
signed intermediate root-01 "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign"

# Self-signed without basicConstraints (a minimal config, so no v3_ca defaults).
printf '[req]\ndistinguished_name=dn\nx509_extensions=ext\n[dn]\n[ext]\nsubjectKeyIdentifier=hash\n' >"$work/nobc.cnf"
openssl req -x509 -config "$work/nobc.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$work/no-basic-constraints.key" -out "$out/no-basic-constraints.pem" -days $days \
  -subj "/O=catrust corpus/CN=no-basic-constraints" 2>/dev/null

# A CA whose keyUsage lacks keyCertSign.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$work/no-keycertsign.key" -out "$out/no-keycertsign.pem" -days $days \
  -subj "/O=catrust corpus/CN=no-keycertsign" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,digitalSignature" 2>/dev/null

# RSA 1024, SHA-1 and MD5 CAs.
openssl req -x509 -newkey rsa:1024 -nodes -keyout "$work/rsa-1024.key" -out "$out/rsa-1024.pem" \
  -days $days -subj "/O=catrust corpus/CN=rsa-1024" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
for md in sha1 md5; do
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/$md.key" -out "$out/$md.pem" \
    -"$md" -days $days -subj "/O=catrust corpus/CN=$md" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
done

# Blocks that are not certificates.
openssl req -new -key "$work/root-02.key" -subj "/CN=csr" -out "$out/csr.pem"
openssl pkey -in "$work/root-02.key" -pubout -out "$out/public-key.pem"
openssl crl2pkcs7 -nocrl -certfile "$out/root-01.pem" -out "$out/pkcs7.pem"
openssl x509 -in "$out/root-01.pem" -trustout -addtrust serverAuth -out "$out/trusted-certificate.pem"
openssl ecparam -name prime256v1 -out "$out/ec-parameters.pem"
mkdir -p "$work/ca/newcerts" && : >"$work/ca/index.txt" && echo 01 >"$work/ca/crlnumber"
printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ncrlnumber=%s\ndefault_md=sha256\ndefault_crl_days=%s\n' \
  "$work/ca/index.txt" "$work/ca/crlnumber" $days >"$work/ca.cnf"
openssl ca -config "$work/ca.cnf" -gencrl -keyfile "$work/root-01.key" -cert "$out/root-01.pem" \
  -out "$out/crl.pem" 2>/dev/null

# Private keys: every format pre-commit's detect-private-key knows, and PKCS#8.
openssl genrsa -traditional -out "$out/key-rsa.pem" 2048 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$out/key-ec.pem"
openssl dsaparam -genkey -out "$work/dsa.pem" 2048 2>/dev/null
openssl pkey -in "$work/dsa.pem" -traditional -out "$out/key-dsa.pem"
openssl genpkey -algorithm ed25519 -out "$out/key-pkcs8.pem"
openssl genpkey -algorithm ed25519 -aes-256-cbc -pass pass:corpus -out "$out/key-pkcs8-encrypted.pem"
ssh-keygen -q -t ed25519 -N '' -C corpus -f "$work/id_ed25519"
cp "$work/id_ed25519" "$out/key-openssh.pem"
# No puttygen, gpg secret export or openvpn here: these three are made by hand in the
# formats' shapes (the detector looks for their markers, as pre-commit's does).
{
  echo "PuTTY-User-Key-File-3: ssh-ed25519"
  echo "Encryption: none"
  echo "Comment: corpus"
  echo "Public-Lines: 2"
  openssl rand -base64 48 | fold -w 64
  echo "Private-Lines: 1"
  openssl rand -base64 48 | tr -d '\n'; echo
  echo "Private-MAC: $(openssl rand -hex 32)"
} >"$out/key-putty.ppk"
{
  echo "-----BEGIN PGP PRIVATE KEY BLOCK-----"
  echo
  openssl rand -base64 120 | fold -w 64
  echo "-----END PGP PRIVATE KEY BLOCK-----"
} >"$out/key-pgp.asc"
{
  echo "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----"
  echo 'Comment: "corpus"'
  openssl rand -base64 120 | fold -w 64
  echo "---- END SSH2 ENCRYPTED PRIVATE KEY ----"
} >"$out/key-ssh2.pem"
{
  echo "-----BEGIN OpenVPN Static key V1-----"
  for _ in $(seq 16); do openssl rand -hex 16; done
  echo "-----END OpenVPN Static key V1-----"
} >"$out/key-openvpn.key"

ls "$out"
