/** Key material, tokens and times the parity cases share (generated for these tests only: RSA 1024, EC P-256). */
export const RSA_JWK =
  '{"kty":"RSA","n":"4UikLaZOTwr7tj5FtvYaX-vD4TnIyYGW5gjklNP0wKCiCo6mckp8QIxU384hCL-stJ7_9NOr1y4k50m334kThA6qLykehjtmxXd2QbZU3Qm-LUxsxIW2izvs_70aXl18O-DXX-SYENt7COBLqGt4Rk9MiZdqjTzIxzQsrrcwlcE","e":"AQAB","d":"aFXMM5giDFl52h1dDC9OZ745KcYpR6nMyRy1QHgpkkzSvzDxxVzZzssvQ7ejdPnQcpZw1GJz42RrkvKBRfWmI1RKVRYydzjehOG4heq7Q91ZL3w1gqr4yNvwsVO2E9ZKmw0BpqPZ5HDX0zvhtEka7T8kKDFHodkDCWAFUSM52wE","p":"-a9KXMsE3wDZscL1ZK6dZaGlHF9-0ZX_O-MnbzLwycKxYk2lPcIJtupVHw-C6SFrDTxPCN735m-kewogz-0SDQ","q":"5vtavWsCJHr9_Q0-y-dw9cfx8WSYJ2moTL6Q4O_dwEV5BYQHy_FaUP7Jc1PC547xK4PRp6W8vLvmGtmJYMLJhQ","dp":"RTGw1_pjRTHFIqA2xUom0G11hmFokciRzRTsbsKdPCy6X9XIv06wxoI2SL9Rti3OrwJRnNG9vZye5oIuCbFXWQ","dq":"L48VkebUnBpO7amqgmV3FsRChseFpKfWpWafghEhgZNMZdxXlqBtTjwH0p0uhmsiMSmFI5W2lM3DhUfBR5ET2Q","qi":"EN6PRKExGhvCWFz5waOtnuZKgSn-5f1BeaQRflupG4IHBQiTAiM1pYisTNLI30r6ShHVaR6R5URnOa-mNErMKQ"}'
export const RSA_PEM =
  '"-----BEGIN PUBLIC KEY-----\\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDhSKQtpk5PCvu2PkW29hpf68Ph\\nOcjJgZbmCOSU0/TAoKIKjqZySnxAjFTfziEIv6y0nv/006vXLiTnSbffiROEDqov\\nKR6GO2bFd3ZBtlTdCb4tTGzEhbaLO+z/vRpeXXw74Ndf5JgQ23sI4Euoa3hGT0yJ\\nl2qNPMjHNCyutzCVwQIDAQAB\\n-----END PUBLIC KEY-----\\n"'
export const EC_JWK =
  '{"kty":"EC","x":"ln9K_rDYUVKY8KGB4wwtBa9WI7dR8bM3zXPec1sVv4s","y":"BvrYOSxHevVpw4rEBBtVfc5PojeRqKMCKFqKZkeQG-A","crv":"P-256","d":"BA-fez_FscrRxQV6A6Bf_3XNApDcq0OaCwlyys2gm9I"}'
export const EC_PEM =
  '"-----BEGIN PUBLIC KEY-----\\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEln9K/rDYUVKY8KGB4wwtBa9WI7dR\\n8bM3zXPec1sVv4sG+tg5LEd69WnDisQEG1V9zk+iN5GoowIoWopmR5Ab4A==\\n-----END PUBLIC KEY-----\\n"'
export const EC_PUB_JWK =
  '"{\\"kty\\":\\"EC\\",\\"x\\":\\"ln9K_rDYUVKY8KGB4wwtBa9WI7dR8bM3zXPec1sVv4s\\",\\"y\\":\\"BvrYOSxHevVpw4rEBBtVfc5PojeRqKMCKFqKZkeQG-A\\",\\"crv\\":\\"P-256\\"}"'
export const ES256_TOKEN =
  '"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImlzcyI6Im1lIiwiZXhwIjo0MTAyNDQ0ODAwfQ.rJDhhtix1ZPWs9PYZydKwND4lyzh0U4o1KFZ_MLvGLDLk75Sw5Aw6oSuyw59Bsjr7ZB3QCmx5BfSMQcTsgzF8g"'
export const PS256_TOKEN =
  '"eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.O7gTbxWDblZrmeqV5kb9GC0meVPilEqAutB_yc7M2TTTIeT0LLs238JLMVSzOj1hB3UHu0E23oJCA7JM5xNztUgNTctJWzOyNnHQATzQ4akLja89d9TM6xRtAdKKE1hV0ttJjinMLmcT2nAm3_R3sRhm6uUEcCRhyfUpUyhn0R8"'
export const RSA_PKCS1 =
  '"-----BEGIN RSA PRIVATE KEY-----\\nMIICXwIBAAKBgQC6xE04/bVPwIyeMZ5ej0F18nujVgOK27c74JKLcZAYp9PX/L+o\\nCp5Q/axh28nCTomozgYIY2Wedi/aAV3zSPJvXJnBPQYgLC1+oNCSVoJsig8UnBoE\\nP9wrVYHn466PhKr/KYPYpIiJ6EXy4ygNRqurY18FSdFU86qB2iFBpChDowIDAQAB\\nAoGBAKjmCzvl3IjiBYiuMJ0tCjLi9cKxb4SszBj/LyehrIFPjLm/3YbXC3MM5U6e\\nF+h7Y+xfXH9LfEOAeCe7or33kx1rqJNDZJsDVcitqFmPXolgS+tWLYw7uE7e38WL\\nftH95+zKiW0PBZAwQ0fZY+CUsuvS8eC76MdAfiveis69gxchAkEA7P4ss+8i4AY7\\niPkkj8jAEq6OwjC31DhAejUgvHc+dcN8g/Zp0mQAPT5YQ/qDZiWAdIEJ6JPZODls\\nHMHQrELhkwJBAMm+6MKkfPM0QCU24PbAr2vpd8Pep1W1S9guzbaYBtWPU3fC3bY5\\nOP6m5mUOhnDLnznPhH4b662G6e3O3CLwn7ECQQDbyYHVwcJ7NuyBxGU2/7u5169H\\nwvzJUP3jGGBqyL/hYVGZ5K4RU3KxWZ9sM+kmk0MFSSLSUkOSlBaCuPB4wXIHAkEA\\nq3eT8uLExBwTrM2A1JgeQHR080fJJ0JojPvyoY+Ct34SrgY0VE08UMtfpGJ9B185\\nHHRwopJuc9Tn+9PGK/ghcQJBANU6Ixeib5Y4+L8o9hdZCGlyIPM1btVMlXpOLeMb\\nsyOBqJ0kj/Ol7bPjAJcrVT3QNAWa+HyGA7bqM8T+SH2NIWM=\\n-----END RSA PRIVATE KEY-----\\n"'
export const RSA_PKCS8 =
  '"-----BEGIN PRIVATE KEY-----\\nMIICeQIBADANBgkqhkiG9w0BAQEFAASCAmMwggJfAgEAAoGBALrETTj9tU/AjJ4x\\nnl6PQXXye6NWA4rbtzvgkotxkBin09f8v6gKnlD9rGHbycJOiajOBghjZZ52L9oB\\nXfNI8m9cmcE9BiAsLX6g0JJWgmyKDxScGgQ/3CtVgefjro+Eqv8pg9ikiInoRfLj\\nKA1Gq6tjXwVJ0VTzqoHaIUGkKEOjAgMBAAECgYEAqOYLO+XciOIFiK4wnS0KMuL1\\nwrFvhKzMGP8vJ6GsgU+Mub/dhtcLcwzlTp4X6Htj7F9cf0t8Q4B4J7uivfeTHWuo\\nk0NkmwNVyK2oWY9eiWBL61YtjDu4Tt7fxYt+0f3n7MqJbQ8FkDBDR9lj4JSy69Lx\\n4Lvox0B+K96Kzr2DFyECQQDs/iyz7yLgBjuI+SSPyMASro7CMLfUOEB6NSC8dz51\\nw3yD9mnSZAA9PlhD+oNmJYB0gQnok9k4OWwcwdCsQuGTAkEAyb7owqR88zRAJTbg\\n9sCva+l3w96nVbVL2C7NtpgG1Y9Td8Ldtjk4/qbmZQ6GcMufOc+EfhvrrYbp7c7c\\nIvCfsQJBANvJgdXBwns27IHEZTb/u7nXr0fC/MlQ/eMYYGrIv+FhUZnkrhFTcrFZ\\nn2wz6SaTQwVJItJSQ5KUFoK48HjBcgcCQQCrd5Py4sTEHBOszYDUmB5AdHTzR8kn\\nQmiM+/Khj4K3fhKuBjRUTTxQy1+kYn0HXzkcdHCikm5z1Of708Yr+CFxAkEA1Toj\\nF6Jvljj4vyj2F1kIaXIg8zVu1UyVek4t4xuzI4GonSSP86Xts+MAlytVPdA0BZr4\\nfIYDtuozxP5IfY0hYw==\\n-----END PRIVATE KEY-----\\n"'
export const EC_PKCS8 =
  '"-----BEGIN PRIVATE KEY-----\\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2ogZEVkjKKUoSmd4\\nVyJgaH2MX9ymlTPMxRXqCLgNRQuhRANCAAR2gDE/ctthMSDxdE1LoNbLhVOQFY8S\\n589GM+fpvMptHSe2rJTnCQZCyciZjrzyzEJPjtgP2Dl/QGl/oea8VXpu\\n-----END PRIVATE KEY-----\\n"'
export const HS_JWK = '{"kty": "oct", "k": "c2VjcmV0"}'
export const HS_TOKEN = `io.jwt.encode_sign({"alg": "HS256", "typ": "JWT"}, {"sub": "alice", "iss": "me", "aud": "api", "exp": 4102444800, "nbf": 1000}, ${HS_JWK})`
export const RS_TOKEN = `io.jwt.encode_sign({"alg": "RS256"}, {"sub": "bob", "exp": 1000}, ${RSA_JWK})`

export const T = 1700000000000000000 // 2023-11-14T22:13:20Z
export const T2 = 1709876543000000000
