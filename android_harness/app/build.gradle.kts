plugins {
    id("com.android.application")
}

// LiteRT 1.4.x is the Interpreter-API line of com.google.ai.edge.litert (package names
// stay org.tensorflow.lite.*); the GPU delegate ships as litert-gpu + litert-gpu-api.
val litertVersion = "1.4.1"

android {
    namespace = "org.kwskd.app"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.kwskd.app"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }
}

dependencies {
    implementation("com.google.ai.edge.litert:litert:$litertVersion")
    implementation("com.google.ai.edge.litert:litert-gpu:$litertVersion")
    implementation("com.google.ai.edge.litert:litert-gpu-api:$litertVersion")

    // The same JUnit 4 tests that android_harness/test-jvm.sh runs without Gradle.
    testImplementation("junit:junit:4.13.2")
}
