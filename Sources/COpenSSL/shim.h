// Only what the message signer needs: one-shot HMAC and a constant-time compare.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
