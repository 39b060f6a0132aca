() => {
  // Webcam photo in two clicks instead of three: picking the camera as the content image's source
  // also asks for the camera (Gradio waits for a second click on "Click to Access Webcam" first).
  const content = document.querySelector("#content-image");
  content?.addEventListener("click", () => {
    setTimeout(() => content.querySelector("[title='grant webcam access'] button")?.click(), 100);
  });
}
