"""Lesson 2: Tokenization and the dataloader."""
import streamlit as st

import ui

ui.page_setup()
ui.lesson_header(2, "Tokenization and the dataloader", "This lesson is being built.")
