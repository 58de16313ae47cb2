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
