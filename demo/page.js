() => {
  // Webcam photo in two clicks instead of three: picking the camera as the content image's source
  // also asks for the camera (Gradio waits for a second click on "Click to Access Webcam" first).
  document.addEventListener("click", (event) => {
    if (!event.target.closest("#content-image")) return;
    setTimeout(() => document.querySelector("#content-image [title='grant webcam access'] button")?.click(), 100);
  });
}
