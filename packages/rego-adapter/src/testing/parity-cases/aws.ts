/** Parity cases: `providers.aws.sign_req`. */
import { T, T2 } from './shared.js'

const AWS_CFG =
  '{"aws_access_key": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "aws_service": "s3", "aws_region": "us-east-1"}'
const awsCfg = (extra: string) => `object.union(${AWS_CFG}, ${extra})`

export const AWS_CASES: readonly string[] = [
  `providers.aws.sign_req({"method": "get", "url": "https://examplebucket.s3.amazonaws.com/test.txt?b=2&a=1", "headers": {"Range": "bytes=0-9", "x-amz-meta-A": "x"}}, ${AWS_CFG}, ${T})`,
  `providers.aws.sign_req({"method": "post", "url": "https://sts.amazonaws.com/", "body": {"k": "v", "h": "<&>"}}, ${awsCfg('{"aws_service": "sts"}')}, ${T})`,
  `providers.aws.sign_req({"method": "POST", "url": "https://x.amazonaws.com/p/a th/é", "raw_body": "hello"}, ${awsCfg('{"aws_session_token": "TOKEN", "aws_service": "execute-api"}')}, ${T2})`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com/"}, ${awsCfg('{"disable_payload_signing": true}')}, ${T})`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com/"}, ${awsCfg('{"disable_payload_signing": true, "aws_service": "sts"}')}, ${T})`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com:8443", "headers": {"User-Agent": "me", "Authorization": "old", "X-Amzn-Trace-Id": "t", "n": 5}}, ${AWS_CFG}, ${T})`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com/a%2Fb?x=%20y#frag"}, ${AWS_CFG}, ${T})`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com/", "timeout": "5s", "raise_error": false}, ${AWS_CFG}, ${T})`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com/", "bogus": 1}, ${AWS_CFG}, ${T})`,
  `providers.aws.sign_req({"method": "get"}, ${AWS_CFG}, ${T})`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com/"}, {"aws_service": "s3"}, ${T})`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com/"}, ${awsCfg('{"disable_payload_signing": "yes"}')}, ${T})`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com/"}, ${AWS_CFG}, 1.5)`,
  `providers.aws.sign_req({"method": "get", "url": "https://x.amazonaws.com/%zz"}, ${AWS_CFG}, ${T})`,
]
