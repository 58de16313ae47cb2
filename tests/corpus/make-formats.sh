#!/usr/bin/env bash
# Makes the pasted-format cases of the lint corpus (issue 12) from the certificates in
# _pki/ with the real openssl: PKCS#7 in DER, UTF-16, a byte order mark, CR-only line
# ends, the X509 CERTIFICATE label, and keys with CR/CRLF line ends. The outputs are
# checked in; run this only to remake them (it never touches _pki/).
set -euo pipefail
cd "$(dirname "$0")"
root=_pki/root-01.pem
case_file() { mkdir -p "$1" && cat >"$1/$2"; }

openssl crl2pkcs7 -nocrl -certfile "$root" -outform DER -out pkcs7-der/root.p7b
iconv -f UTF-8 -t UTF-16 <"$root" >utf16-bom/root.pem
iconv -f UTF-8 -t UTF-16LE <"$root" >utf16-le-no-bom/root.pem
{ printf '\xef\xbb\xbf'; cat "$root"; } >utf8-bom/root.pem
tr '\n' '\r' <"$root" >cr-only-line-endings/root.pem
sed 's/ CERTIFICATE-----/ X509 CERTIFICATE-----/' "$root" >x509-certificate-label/root.pem
# A CR-only key file used to be quoted whole in CT107's message.
tr '\n' '\r' <_pki/key-rsa.pem >private-key-cr-only/root.pem
{ cat "$root"; sed 's/$/\r/' _pki/key-pkcs8.pem; } >private-key-crlf-after-certificate/root.pem
tr '\n' '\r' <_pki/key-pkcs8-encrypted.pem >private-key-encrypted-cr-only/root.pem

# CT207 is for certificates some other CA signed: SHA-1 and MD5 intermediates under a
# throwaway RSA root (the root's key is deleted at the end). And a 2047-bit RSA CA
# (CT206 must say 2047, not 2040).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
days=10950
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/rsa-root.key" -out "$work/rsa-root.pem" \
  -days $days -subj "/O=catrust corpus/CN=rsa-root" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$work/ca.ext"
for md in sha1 md5; do
  openssl req -newkey rsa:2048 -nodes -keyout "$work/$md.key" -out "$work/$md.csr" \
    -subj "/O=catrust corpus/CN=$md-intermediate" 2>/dev/null
  openssl x509 -req -in "$work/$md.csr" -CA "$work/rsa-root.pem" -CAkey "$work/rsa-root.key" \
    -"$md" -set_serial "0x$(openssl rand -hex 8)" -days $days -extfile "$work/ca.ext" \
    -out "$md-signature/root.pem" 2>/dev/null
done
openssl req -x509 -newkey rsa:2047 -nodes -keyout "$work/rsa-2047.key" -out rsa-2047/root.pem \
  -days $days -subj "/O=catrust corpus/CN=rsa-2047" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
