// Reference firmware: ESP32 + analog sEMG front end (MyoWare 2.0 RAW output or
// Upside Down Labs Muscle BioAmp) streaming the emg-pipeline Nordic UART frame.
//
// Frame (one notification), as firmware_profiles/nus_emg.toml describes it:
//   bytes 0-1  u16 little-endian packet counter, +1 per notification, wraps at 65536
//   bytes 2..  25 samples x 2 channels, int16 little-endian, sample-major
//              (s0c1 s0c2 s1c1 s1c2 ...) = 100 bytes -> 102-byte notifications
// Rate: 1000 samples/s per channel from a hardware timer (not the loop), so the
// receiver's sample clock is right; 40 notifications/s. Needs ATT MTU >= 105:
// the central asks for 247.
// Commands on the RX characteristic (6e400002): 'b' starts, 's' stops and
// resets the counter to 0. Samples are ADC counts minus mid-scale (2048).
//
// Board: any ESP32 with the Arduino core (2.x or 3.x). Library: NimBLE-Arduino.
// Wiring: sensor 1 signal -> GPIO 34 (ADC1_CH6), sensor 2 -> GPIO 35 (ADC1_CH7),
// sensor GND -> GND, sensor + -> 3V3 (battery-powered laptop while testing:
// never connect a mains-powered computer to electrodes on a person).

#include <Arduino.h>
#include <NimBLEDevice.h>

static const char* DEVICE_NAME = "EMG-ESP32";     // profile scan prefix: "EMG"
static const char* NUS_SERVICE = "6E400001-B5A3-F393-E0A9-E50E24DCCA9E";
static const char* NUS_RX = "6E400002-B5A3-F393-E0A9-E50E24DCCA9E";  // central -> board
static const char* NUS_TX = "6E400003-B5A3-F393-E0A9-E50E24DCCA9E";  // board -> central (notify)

static const int PIN_CH1 = 34;
static const int PIN_CH2 = 35;
static const int CHANNELS = 2;
static const int SAMPLES_PER_PACKET = 25;
static const uint32_t SAMPLE_RATE_HZ = 1000;
static const int ADC_MID = 2048;                    // 12-bit ADC mid-scale
static const int FRAME_BYTES = 2 + SAMPLES_PER_PACKET * CHANNELS * 2;
static const int RING_PACKETS = 16;                 // 400 ms of buffering

// Ring of complete frames, filled by the sampling task, emptied by loop().
static uint8_t ring[RING_PACKETS][FRAME_BYTES];
static volatile uint32_t ringHead = 0;              // next frame to fill
static volatile uint32_t ringTail = 0;              // next frame to send
static volatile uint32_t overruns = 0;              // frames dropped on the board (counter shows it)

static NimBLECharacteristic* txChar = nullptr;
static volatile bool streaming = false;
static volatile bool connected = false;
static uint16_t packetCounter = 0;
static int sampleInPacket = 0;
static uint8_t frame[FRAME_BYTES];

static hw_timer_t* sampleTimer = nullptr;
static TaskHandle_t samplerTask = nullptr;

static inline void putInt16LE(uint8_t* p, int16_t v) {
  p[0] = (uint8_t)(v & 0xFF);
  p[1] = (uint8_t)((v >> 8) & 0xFF);
}

// Timer ISR: only wakes the sampling task (analogRead is not ISR-safe).
void IRAM_ATTR onSampleTimer() {
  BaseType_t woken = pdFALSE;
  vTaskNotifyGiveFromISR(samplerTask, &woken);
  if (woken) portYIELD_FROM_ISR();
}

static void startFrame() {
  putInt16LE(frame, (int16_t)packetCounter);
  sampleInPacket = 0;
}

// One sample of every channel per timer tick; a full frame goes to the ring.
static void samplerLoop(void*) {
  for (;;) {
    ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    if (!streaming) continue;
    uint8_t* at = frame + 2 + sampleInPacket * CHANNELS * 2;
    putInt16LE(at, (int16_t)(analogRead(PIN_CH1) - ADC_MID));
    putInt16LE(at + 2, (int16_t)(analogRead(PIN_CH2) - ADC_MID));
    if (++sampleInPacket == SAMPLES_PER_PACKET) {
      uint32_t next = (ringHead + 1) % RING_PACKETS;
      if (next == ringTail) {
        overruns++;                      // radio too slow: drop, the counter still advances
      } else {
        memcpy(ring[ringHead], frame, FRAME_BYTES);
        ringHead = next;
      }
      packetCounter++;                   // wraps at 65536 by itself
      startFrame();
    }
  }
}

static void startStreaming() {
  packetCounter = 0;
  ringTail = ringHead;
  startFrame();
  streaming = true;
}

static void stopStreaming() {
  streaming = false;
  packetCounter = 0;
}

class ServerCallbacks : public NimBLEServerCallbacks {
  void onConnect(NimBLEServer* server, NimBLEConnInfo& info) override {
    connected = true;
    // 7.5-15 ms connection interval: a slow interval loses notifications on some hosts.
    server->updateConnParams(info.getConnHandle(), 6, 12, 0, 400);
  }
  void onDisconnect(NimBLEServer*, NimBLEConnInfo&, int) override {
    connected = false;
    stopStreaming();
    NimBLEDevice::startAdvertising();
  }
};

class RxCallbacks : public NimBLECharacteristicCallbacks {
  void onWrite(NimBLECharacteristic* c, NimBLEConnInfo&) override {
    std::string value = c->getValue();
    if (value.empty()) return;
    if (value[0] == 'b') startStreaming();
    else if (value[0] == 's') stopStreaming();
  }
};

void setup() {
  analogReadResolution(12);
  analogSetAttenuation(ADC_11db);        // 0-3.3 V input range

  NimBLEDevice::init(DEVICE_NAME);
  NimBLEDevice::setMTU(247);
  NimBLEServer* server = NimBLEDevice::createServer();
  server->setCallbacks(new ServerCallbacks());
  NimBLEService* nus = server->createService(NUS_SERVICE);
  txChar = nus->createCharacteristic(NUS_TX, NIMBLE_PROPERTY::NOTIFY);
  NimBLECharacteristic* rx = nus->createCharacteristic(
      NUS_RX, NIMBLE_PROPERTY::WRITE | NIMBLE_PROPERTY::WRITE_NR);
  rx->setCallbacks(new RxCallbacks());
  nus->start();
  NimBLEAdvertising* adv = NimBLEDevice::getAdvertising();
  adv->addServiceUUID(NUS_SERVICE);
  adv->setName(DEVICE_NAME);
  adv->start();

  xTaskCreatePinnedToCore(samplerLoop, "sampler", 4096, nullptr, configMAX_PRIORITIES - 1,
                          &samplerTask, 1);
  // Arduino core 3.x timer API: 1 MHz tick, alarm every 1000 ticks = 1 kHz.
  sampleTimer = timerBegin(1000000);
  timerAttachInterrupt(sampleTimer, &onSampleTimer);
  timerAlarm(sampleTimer, 1000000 / SAMPLE_RATE_HZ, true, 0);
}

void loop() {
  // Send every complete frame; notify() copies the value, so the slot is free after.
  while (connected && ringTail != ringHead) {
    txChar->setValue(ring[ringTail], FRAME_BYTES);
    if (!txChar->notify()) break;        // stack busy: try again on the next pass
    ringTail = (ringTail + 1) % RING_PACKETS;
  }
  delay(2);
}
