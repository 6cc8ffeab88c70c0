//! The receiver as an AWS Lambda function behind a Function URL (payload format 2.0):
//! the same [`Receiver`], the same answers. The container image is the same; the
//! binary runs this when `AWS_LAMBDA_RUNTIME_API` is set.

use std::sync::Arc;

use lambda_http::{Body, Request, Response, service_fn};

use crate::{Delivery, Receiver};

/// Answers one Function URL invocation.
pub async fn handle(receiver: &Receiver, request: Request) -> Response<Body> {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Function URLs decode `isBase64Encoded` bodies before they get here.
    let body: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    let answer = receiver
        .handle(Delivery {
            event: header("x-github-event"),
            id: header("x-github-delivery"),
            signature: header("x-hub-signature-256"),
            body,
        })
        .await;
    Response::builder()
        .status(answer.status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::Text(answer.body))
        .expect("a valid response")
}

/// Serves invocations until the Lambda runtime stops the process.
pub async fn run(receiver: Arc<Receiver>) -> Result<(), lambda_http::Error> {
    lambda_http::run(service_fn(move |request: Request| {
        let receiver = receiver.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&receiver, request).await) }
    }))
    .await
}
